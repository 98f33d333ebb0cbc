// Package control is sysban's local control surface: an HTTP+JSON API
// served on a unix socket that only root can reach, and the Client the
// sysban CLI verbs (status, ban, unban, banned, reload) use to call it.
//
// The server knows nothing about jails, pipelines or nftables: it needs
// only a Daemon, the small interface it declares, and translates between
// that interface and JSON. Access control is the socket file itself (mode
// 0600, owned by the daemon's user, normally root), so the API carries no
// authentication of its own.
//
// # Endpoints
//
//	GET  /v1/status             Status
//	GET  /v1/jails/{jail}       JailStatus
//	POST /v1/jails/{jail}/ban   BanRequest -> BanInfo
//	POST /v1/unban              UnbanRequest -> []BanInfo
//	POST /v1/unban-all          -> UnbanAllResult
//	GET  /v1/banned[?addr=A]    []BanInfo
//	POST /v1/reload             ReloadResult
//
// Errors are {"error": "...", "code": "..."} with a status code that says
// what went wrong: 400 bad request, 404 unknown jail or address not banned,
// 409 configuration refused, 413 body too large, 500 daemon failure.
package control
