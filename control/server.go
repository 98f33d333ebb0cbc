package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/sysban/sysban"
)

// Limits of the server. The socket is root-only, but a stuck or buggy
// client must still not hold the daemon's memory or goroutines.
const (
	MaxBodySize    = 64 << 10 // request bodies are a few dozen bytes
	maxConnections = 32
	maxHeaderBytes = 16 << 10
	// DefaultSocket is where the daemon serves the API unless configured
	// otherwise.
	DefaultSocket = "/run/sysban/control.sock"
)

// Server serves the control API on a unix socket.
type Server struct {
	path   string
	d      Daemon
	log    *slog.Logger
	ln     *net.UnixListener
	srv    *http.Server
	closed sync.Once
	info   os.FileInfo // the socket file we created, to remove only ours
}

// NewServer binds the socket at path now, so that a bad path or a second
// daemon is reported before the daemon says it is ready.
//
// The parent directory is created with mode 0700 if missing. An existing
// path is replaced only if it is a socket nobody answers on (left by a
// daemon that died); anything else, including a socket another daemon is
// serving, is an error. The socket gets mode 0600 before it appears under
// its name, so there is no moment at which another user could connect.
func NewServer(path string, d Daemon, log *slog.Logger) (*Server, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if path == "" {
		path = DefaultSocket
	}
	ln, info, err := listen(path)
	if err != nil {
		return nil, err
	}
	s := &Server{path: path, d: d, log: log, ln: ln, info: info}
	s.srv = &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		// A reload or an unban of every address can take a while on a
		// large ban list; still, nothing should hold a connection forever.
		WriteTimeout:   2 * time.Minute,
		IdleTimeout:    time.Minute,
		MaxHeaderBytes: maxHeaderBytes,
		ErrorLog:       slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		ConnContext:    withPeer,
	}
	return s, nil
}

// Serve is NewServer followed by Server.Serve.
func Serve(ctx context.Context, path string, d Daemon, log *slog.Logger) error {
	s, err := NewServer(path, d, log)
	if err != nil {
		return err
	}
	return s.Serve(ctx)
}

// Path is the socket path.
func (s *Server) Path() string { return s.path }

// Serve answers requests until ctx is done, then stops accepting, waits up
// to five seconds for requests in flight and removes the socket. It
// returns nil on a clean shutdown.
func (s *Server) Serve(ctx context.Context) error {
	s.srv.BaseContext = func(net.Listener) context.Context { return ctx }
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		select {
		case <-ctx.Done():
		case <-done:
			return
		}
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.srv.Shutdown(sctx); err != nil {
			s.srv.Close()
		}
	}()
	s.log.Info("control API listening", "socket", s.path)
	err := s.srv.Serve(newPeerListener(s.ln, maxConnections))
	close(done)
	<-stopped
	s.removeSocket()
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return fmt.Errorf("control: serve %s: %w", s.path, err)
}

// Close stops the server at once and removes the socket. Use it for a
// Server that is never served, or to abort; Serve stops by its context.
func (s *Server) Close() error {
	err := s.srv.Close()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	if cerr := s.ln.Close(); err == nil && cerr != nil && !errors.Is(cerr, net.ErrClosed) {
		err = cerr
	}
	s.removeSocket()
	return err
}

// removeSocket removes the socket file if it is still the one we created:
// a successor daemon may already have replaced it.
func (s *Server) removeSocket() {
	s.closed.Do(func() {
		if fi, err := os.Lstat(s.path); err == nil && os.SameFile(fi, s.info) {
			os.Remove(s.path)
		}
	})
}

// listen binds path as described in NewServer.
func listen(path string) (*net.UnixListener, os.FileInfo, error) {
	dir := filepath.Dir(path)
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, nil, fmt.Errorf("control: create socket directory: %w", err)
		}
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode().Type() != fs.ModeSocket {
			return nil, nil, fmt.Errorf("control: %s exists and is not a socket; refusing to replace it", path)
		}
		c, err := net.DialTimeout("unix", path, time.Second)
		if err == nil {
			c.Close()
			return nil, nil, fmt.Errorf("control: %s: another daemon is serving on this socket", path)
		}
		if !errors.Is(err, syscall.ECONNREFUSED) {
			return nil, nil, fmt.Errorf("control: %s: probe existing socket: %w", path, err)
		}
		// A socket nobody listens on: left by a daemon that died.
		if err := os.Remove(path); err != nil {
			return nil, nil, fmt.Errorf("control: remove stale socket: %w", err)
		}
	}

	// Bind in a private 0700 directory beside the final path, tighten the
	// mode, then rename into place: chmod after bind on the final path
	// would leave a window with the umask's mode, and changing the umask
	// would affect every goroutine of the process.
	tmp, err := os.MkdirTemp(dir, ".control-")
	if err != nil {
		return nil, nil, fmt.Errorf("control: %w", err)
	}
	defer os.RemoveAll(tmp)
	tmpPath := filepath.Join(tmp, "s")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmpPath, Net: "unix"})
	if err != nil {
		return nil, nil, fmt.Errorf("control: listen on %s: %w", path, err)
	}
	// The listener would unlink tmpPath on Close; the file lives at path
	// by then and removeSocket handles it.
	ln.SetUnlinkOnClose(false)
	fail := func(err error) (*net.UnixListener, os.FileInfo, error) {
		ln.Close()
		return nil, nil, err
	}
	if err := os.Chmod(tmpPath, 0o600); err != nil {
		return fail(fmt.Errorf("control: chmod socket: %w", err))
	}
	if err := os.Rename(tmpPath, path); err != nil {
		return fail(fmt.Errorf("control: place socket at %s: %w", path, err))
	}
	fi, err := os.Lstat(path)
	if err != nil {
		return fail(fmt.Errorf("control: %w", err))
	}
	return ln, fi, nil
}

// Handler returns the API's HTTP handler, for tests and for serving it
// on a listener of one's own.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", s.status)
	mux.HandleFunc("GET /v1/jails/{jail}", s.jailStatus)
	mux.HandleFunc("POST /v1/jails/{jail}/ban", s.ban)
	mux.HandleFunc("POST /v1/unban", s.unban)
	mux.HandleFunc("POST /v1/unban-all", s.unbanAll)
	mux.HandleFunc("GET /v1/banned", s.banned)
	mux.HandleFunc("POST /v1/reload", s.reload)
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h, pattern := mux.Handler(r)
		if pattern != "" {
			mux.ServeHTTP(w, r) // sets the path values; h would not
			return
		}
		// The mux's own 404 and 405 answers are plain text; keep its
		// status (and Allow header) but answer in JSON like the rest.
		rec := &statusRecorder{header: http.Header{}, status: http.StatusOK}
		h.ServeHTTP(rec, r)
		if allow := rec.header.Get("Allow"); allow != "" {
			w.Header().Set("Allow", allow)
		}
		// A path that is not clean (/v1/jails//ban) gets the mux's
		// redirect, which a JSON client cannot follow: it is no endpoint.
		code := "no_endpoint"
		if rec.status == http.StatusMethodNotAllowed {
			code = "method_not_allowed"
		} else {
			rec.status = http.StatusNotFound
		}
		writeJSON(w, rec.status, errorBody{Error: fmt.Sprintf("no endpoint %s %s", r.Method, r.URL.Path), Code: code})
	})
	return allowPeer(http.MaxBytesHandler(api, MaxBodySize))
}

// statusRecorder keeps the status and headers a handler sets and drops
// its body.
type statusRecorder struct {
	header http.Header
	status int
}

func (r *statusRecorder) Header() http.Header         { return r.header }
func (r *statusRecorder) WriteHeader(status int)      { r.status = status }
func (r *statusRecorder) Write(b []byte) (int, error) { return len(b), nil }

func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	st, err := s.d.Status(r.Context())
	s.reply(w, r, st, err)
}

func (s *Server) jailStatus(w http.ResponseWriter, r *http.Request) {
	js, err := s.d.JailStatus(r.Context(), r.PathValue("jail"))
	s.reply(w, r, js, err)
}

func (s *Server) ban(w http.ResponseWriter, r *http.Request) {
	var req BanRequest
	if !s.decode(w, r, &req) {
		return
	}
	prefix, err := parsePrefix(req.Addr)
	if err != nil {
		s.reply(w, r, nil, err)
		return
	}
	if req.DurationSeconds < -1 {
		s.reply(w, r, nil, fmt.Errorf("%w: duration_seconds %d: want seconds, 0 for the jail's bantime or -1 for permanent", ErrBadRequest, req.DurationSeconds))
		return
	}
	d := time.Duration(req.DurationSeconds) * time.Second
	if req.DurationSeconds == -1 {
		d = sysban.Permanent
	}
	bi, err := s.d.Ban(r.Context(), r.PathValue("jail"), prefix, d)
	if err == nil {
		s.log.Info("ban requested", "jail", bi.Jail, "prefix", bi.Prefix, "until", bi.Until, "permanent", bi.Permanent, callerAttr(r))
	}
	s.reply(w, r, bi, err)
}

func (s *Server) unban(w http.ResponseWriter, r *http.Request) {
	var req UnbanRequest
	if !s.decode(w, r, &req) {
		return
	}
	prefix, err := parsePrefix(req.Addr)
	if err != nil {
		s.reply(w, r, nil, err)
		return
	}
	bans, err := s.d.Unban(r.Context(), prefix, req.Jail)
	if bans == nil {
		bans = []BanInfo{}
	}
	if err == nil {
		s.log.Info("unban requested", "prefix", prefix, "jail", req.Jail, "lifted", len(bans), callerAttr(r))
	}
	s.reply(w, r, bans, err)
}

func (s *Server) unbanAll(w http.ResponseWriter, r *http.Request) {
	n, err := s.d.UnbanAll(r.Context())
	if err == nil {
		s.log.Info("unban of every address requested", "lifted", n, callerAttr(r))
	}
	s.reply(w, r, UnbanAllResult{Unbanned: n}, err)
}

func (s *Server) banned(w http.ResponseWriter, r *http.Request) {
	var prefix netip.Prefix
	if a := r.URL.Query().Get("addr"); a != "" {
		var err error
		if prefix, err = parsePrefix(a); err != nil {
			s.reply(w, r, nil, err)
			return
		}
	}
	bans, err := s.d.Banned(r.Context(), prefix)
	if bans == nil {
		bans = []BanInfo{}
	}
	s.reply(w, r, bans, err)
}

func (s *Server) reload(w http.ResponseWriter, r *http.Request) {
	res, err := s.d.Reload(r.Context())
	if err != nil {
		s.log.Warn("reload refused; the old configuration keeps running", "err", err, callerAttr(r))
	} else {
		s.log.Info("configuration reloaded", "jails", res.Jails, "removed", res.Removed, callerAttr(r))
	}
	s.reply(w, r, res, err)
}

// callerAttr names the process that made a request, for the audit trail
// of bans, unbans and reloads.
func callerAttr(r *http.Request) slog.Attr {
	p := peerOf(r)
	if !p.known {
		return slog.String("caller", "unknown")
	}
	return slog.Group("caller", "uid", p.uid, "pid", p.pid)
}

// decode reads a JSON body strictly; on failure it answers and returns false.
func (s *Server) decode(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		// dec.More is false before a stray '}' or ']', so require the end
		// of input itself.
		if _, terr := dec.Token(); terr != io.EOF {
			var tooLarge *http.MaxBytesError
			if errors.As(terr, &tooLarge) {
				err = terr
			} else {
				err = errors.New("trailing data after the JSON object")
			}
		}
	}
	if err == nil {
		return true
	}
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		s.reply(w, r, nil, fmt.Errorf("%w: body over %d bytes", ErrTooLarge, tooLarge.Limit))
	} else {
		s.reply(w, r, nil, fmt.Errorf("%w: body: %v", ErrBadRequest, err))
	}
	return false
}

// reply writes v, or err as an error body with the status its sentinel
// says. Daemon failures (500) are logged here, the edge; client mistakes
// are only returned to the client.
func (s *Server) reply(w http.ResponseWriter, r *http.Request, v any, err error) {
	if err == nil {
		writeJSON(w, http.StatusOK, v)
		return
	}
	status, code := http.StatusInternalServerError, "internal"
	for _, c := range errorCodes() {
		if errors.Is(err, c.err) {
			status, code = c.status, c.code
			break
		}
	}
	if status == http.StatusInternalServerError {
		s.log.Error("control request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	writeJSON(w, status, errorBody{Error: err.Error(), Code: code})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b, _ = json.Marshal(errorBody{Error: "control: encode response: " + err.Error(), Code: "internal"})
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", fmt.Sprint(len(b)+1))
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// parsePrefix reads an address or prefix the way users type it: plain
// IPv4 or IPv6, bracketed IPv6, or a prefix ("2001:db8::/64", host bits
// zero). An address is a /32 or /128; IPv4-mapped IPv6 is unmapped so one
// host has one key.
func parsePrefix(s string) (netip.Prefix, error) {
	p, err := sysban.ParsePrefix(strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(s), "["), "]"))
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%w: address %q: want an IPv4 or IPv6 address or prefix (%v)", ErrBadRequest, s, err)
	}
	return p, nil
}
