package filters

//go:generate go run ./internal/gendoc -doc ../../docs/filters.md

// All returns the filters sysban ships, sorted by name. Every call builds
// them afresh, so callers may modify the result.
//
// The list is written out rather than filled by init functions, so that
// what ships is read in one place. A new filter is a file NAME.go (dashes
// as underscores) with its annotated sample testdata/NAME.log, a line here
// in order, and `go generate ./pipeline/filters` for the docs table;
// TestRegistry holds the four together.
func All() []Spec {
	return []Spec{
		apache(),
		courier(),
		dovecot(),
		exim(),
		mysqld(),
		named(),
		nginxHTTPAuth(),
		openvpn(),
		portprobe(),
		postfix(),
		postfixSASL(),
		proftpd(),
		pureFTPd(),
		qmail(),
		qpopper(),
		saslauthd(),
		sendmailAuth(),
		sendmailReject(),
		squirrelmail(),
		sshd(),
		vsftpd(),
	}
}
