package control

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"syscall"
	"time"

	"github.com/sysban/sysban"
)

// maxResponseSize bounds what the client reads: a ban list of a few
// hundred thousand addresses fits well inside it.
const maxResponseSize = 256 << 20

// Client calls the control API of a running daemon. Its methods mirror
// Daemon (a Client is a Daemon), so errors match the same sentinels with
// errors.Is; when the daemon cannot be reached they match ErrUnreachable.
type Client struct {
	path string
	hc   *http.Client
}

var _ Daemon = (*Client)(nil)

// Dial checks that a daemon answers on the socket at path and returns a
// Client for it. The error says plainly when no daemon runs there or the
// socket is not ours to use.
func Dial(path string) (*Client, error) {
	if path == "" {
		path = DefaultSocket
	}
	c := &Client{path: path}
	dialer := net.Dialer{Timeout: 5 * time.Second}
	c.hc = &http.Client{
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				conn, err := dialer.DialContext(ctx, "unix", path)
				if err != nil {
					return nil, c.unreachable(err)
				}
				return conn, nil
			},
			MaxIdleConns:          2,
			IdleConnTimeout:       30 * time.Second,
			ResponseHeaderTimeout: 3 * time.Minute, // reload and unban --all may be slow
		},
	}
	conn, err := dialer.Dial("unix", path)
	if err != nil {
		return nil, c.unreachable(err)
	}
	conn.Close()
	return c, nil
}

// Close releases idle connections.
func (c *Client) Close() error {
	c.hc.CloseIdleConnections()
	return nil
}

// unreachableError is a connection failure, worded for the person at the
// terminal.
type unreachableError struct {
	path string
	err  error
}

func (e *unreachableError) Error() string {
	cause := e.err.Error()
	var errno syscall.Errno
	if errors.As(e.err, &errno) {
		cause = "connect: " + errno.Error()
	}
	switch {
	case errors.Is(e.err, syscall.EACCES), errors.Is(e.err, syscall.EPERM):
		return fmt.Sprintf("cannot reach the daemon at %s: permission denied: the control socket is root's, run this as root (%s)", e.path, cause)
	default:
		return fmt.Sprintf("cannot reach the daemon at %s: is `sysban run` running? (%s)", e.path, cause)
	}
}

func (e *unreachableError) Unwrap() []error { return []error{ErrUnreachable, e.err} }

func (c *Client) unreachable(err error) error {
	return &unreachableError{path: c.path, err: err}
}

// APIError is an error the daemon answered with.
type APIError struct {
	Status  int    // HTTP status
	Code    string // "unknown_jail", "bad_request", ...
	Message string // the daemon's error text
}

func (e *APIError) Error() string { return e.Message }

// Is matches the sentinel the code stands for.
func (e *APIError) Is(target error) bool {
	for _, c := range errorCodes() {
		if c.err == target {
			return c.code == e.Code
		}
	}
	return false
}

// do sends one request and decodes a 200 answer into out.
func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("control: encode request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://sysban"+path, body)
	if err != nil {
		return fmt.Errorf("control: %w", err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		var ue *unreachableError
		if errors.As(err, &ue) {
			return ue
		}
		return fmt.Errorf("control: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseSize+1))
	if err != nil {
		return fmt.Errorf("control: %s %s: read answer: %w", method, path, err)
	}
	if len(data) > maxResponseSize {
		return fmt.Errorf("control: %s %s: answer over %d bytes", method, path, maxResponseSize)
	}
	if resp.StatusCode != http.StatusOK {
		var eb errorBody
		if err := json.Unmarshal(data, &eb); err != nil || eb.Error == "" {
			return &APIError{Status: resp.StatusCode, Code: "internal",
				Message: fmt.Sprintf("control: %s %s: %s", method, path, resp.Status)}
		}
		return &APIError{Status: resp.StatusCode, Code: eb.Code, Message: eb.Error}
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("control: %s %s: decode answer: %w", method, path, err)
	}
	return nil
}

// Status implements Daemon.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var st Status
	err := c.do(ctx, http.MethodGet, "/v1/status", nil, &st)
	return st, err
}

// JailStatus implements Daemon.
func (c *Client) JailStatus(ctx context.Context, jail string) (JailStatus, error) {
	var js JailStatus
	err := c.do(ctx, http.MethodGet, "/v1/jails/"+url.PathEscape(jail), nil, &js)
	return js, err
}

// Ban implements Daemon. d is sent in whole seconds, rounded up, so a
// positive duration never becomes 0 (the jail's bantime).
func (c *Client) Ban(ctx context.Context, jail string, prefix netip.Prefix, d time.Duration) (BanInfo, error) {
	req := BanRequest{Addr: prefixString(prefix)}
	switch {
	case d == sysban.Permanent:
		req.DurationSeconds = -1
	case d < 0:
		return BanInfo{}, fmt.Errorf("control: ban duration %s: want positive, 0 or permanent", d)
	default:
		req.DurationSeconds = int64((d + time.Second - 1) / time.Second)
	}
	var bi BanInfo
	err := c.do(ctx, http.MethodPost, "/v1/jails/"+url.PathEscape(jail)+"/ban", req, &bi)
	return bi, err
}

// Unban implements Daemon.
func (c *Client) Unban(ctx context.Context, prefix netip.Prefix, jail string) ([]BanInfo, error) {
	var out []BanInfo
	err := c.do(ctx, http.MethodPost, "/v1/unban", UnbanRequest{Addr: prefixString(prefix), Jail: jail}, &out)
	return out, err
}

// prefixString is p as the API reads it: a single address without its
// length, as daemons before prefix bans expect it.
func prefixString(p netip.Prefix) string {
	if p.IsSingleIP() {
		return p.Addr().String()
	}
	return p.String()
}

// UnbanAll implements Daemon.
func (c *Client) UnbanAll(ctx context.Context) (int, error) {
	var res UnbanAllResult
	err := c.do(ctx, http.MethodPost, "/v1/unban-all", struct{}{}, &res)
	return res.Unbanned, err
}

// Banned implements Daemon.
func (c *Client) Banned(ctx context.Context, prefix netip.Prefix) ([]BanInfo, error) {
	path := "/v1/banned"
	if prefix.IsValid() {
		path += "?addr=" + url.QueryEscape(prefixString(prefix))
	}
	var out []BanInfo
	err := c.do(ctx, http.MethodGet, path, nil, &out)
	return out, err
}

// Reload implements Daemon. A refused configuration is an error matching
// ErrConfigRefused; the daemon keeps the old one.
func (c *Client) Reload(ctx context.Context) (ReloadResult, error) {
	var res ReloadResult
	err := c.do(ctx, http.MethodPost, "/v1/reload", struct{}{}, &res)
	return res, err
}
