package pipeline

// mailFilters are the built-in filters for mail daemons: dovecot, postfix,
// postfix-sasl, sendmail-reject, qpopper, qmail and squirrelmail.
func mailFilters() []FilterSpec {
	return nil
}
