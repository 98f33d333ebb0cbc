package pipeline

// serviceFilters are the built-in filters for named, openvpn, apache and
// vsftpd.
func serviceFilters() []FilterSpec {
	return nil
}
