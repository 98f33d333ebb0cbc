package fleet

import (
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// adminUser is the embedded server's own user: the in-process connection
// that creates the bucket. Its password is new at every start and never
// leaves the process.
const adminUser = "sysban-admin"

// Server is the embedded NATS server.
type Server struct {
	srv           *server.Server
	adminPassword string
}

// StartServer starts the embedded server and waits until it takes
// connections. It handles no signals (the daemon does) and logs nothing of
// its own.
func StartServer(c *Config) (*Server, error) {
	e := c.Embedded
	if err := c.loaded(); err != nil {
		return nil, err
	}
	host, portText, err := net.SplitHostPort(e.Listen)
	if err != nil {
		return nil, fmt.Errorf("fleet: embedded.listen: %w", err)
	}
	port, err := strconv.Atoi(portText)
	if err != nil {
		return nil, fmt.Errorf("fleet: embedded.listen: %w", err)
	}
	secret := make([]byte, 16)
	if _, err := rand.Read(secret); err != nil {
		return nil, err
	}
	s := &Server{adminPassword: hex.EncodeToString(secret)}
	opts := &server.Options{
		ServerName:         c.Name,
		Host:               host,
		Port:               port,
		NoSigs:             true,
		NoLog:              true,
		JetStream:          true,
		StoreDir:           e.StoreDir,
		JetStreamMaxMemory: e.MaxMemory,
		JetStreamMaxStore:  e.MaxStore,
		MaxPayload:         64 << 10,
		// A node whose link died without a FIN or RST is dropped within
		// ~6 s, as the nodes notice a dead server: a stale connection
		// would otherwise be pushed the watch's updates until its socket
		// fills, and with TLS hold up Shutdown in its close_notify.
		PingInterval: 2 * time.Second,
		MaxPingsOut:  3,
		Users:        []*server.User{{Username: adminUser, Password: s.adminPassword}},
	}
	for name, cred := range e.Nodes {
		if isPublicKey(cred) {
			opts.Nkeys = append(opts.Nkeys, &server.NkeyUser{Nkey: cred, Permissions: NodePermissions(c.Bucket, name)})
			continue
		}
		opts.Users = append(opts.Users, &server.User{Username: name, Password: cred, Permissions: NodePermissions(c.Bucket, name)})
	}
	if e.serverTLS != nil {
		// In-process connections (this node's own) skip TLS; every
		// network client must speak it.
		opts.TLSConfig = e.serverTLS
		opts.TLS = true
		opts.TLSVerify = e.serverTLS.ClientAuth == tls.RequireAndVerifyClientCert
		opts.TLSTimeout = 2
	}
	if e.ClusterListen != "" {
		ch, cp, err := net.SplitHostPort(e.ClusterListen)
		if err != nil {
			return nil, fmt.Errorf("fleet: embedded.cluster.listen: %w", err)
		}
		opts.Cluster.Name = e.ClusterName
		opts.Cluster.Host = ch
		if opts.Cluster.Port, err = strconv.Atoi(cp); err != nil {
			return nil, fmt.Errorf("fleet: embedded.cluster.listen: %w", err)
		}
		if e.routeTLS != nil {
			opts.Cluster.TLSConfig = e.routeTLS
			opts.Cluster.TLSTimeout = 2
		}
		for _, r := range e.Routes {
			u, err := url.Parse(r)
			if err != nil {
				return nil, fmt.Errorf("fleet: embedded.cluster.routes: %w", err)
			}
			opts.Routes = append(opts.Routes, u)
		}
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("fleet: embedded server: %w", err)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		return nil, fmt.Errorf("fleet: embedded server not ready after 10s (listen %s)", e.Listen)
	}
	s.srv = srv
	return s, nil
}

// ClientURL is where local clients reach the server.
func (s *Server) ClientURL() string { return s.srv.ClientURL() }

// Close stops the server.
func (s *Server) Close() {
	s.srv.Shutdown()
	s.srv.WaitForShutdown()
}

// NodePermissions are a fleet node's rights: publish bans and unbans only
// under its own name; read the bucket (stream info, ordered consumers for
// watching, direct gets); nothing else of JetStream's API, so a node can
// neither purge, delete nor reconfigure the bucket (turning rollups on would
// let one message wipe it). An external server's config grants the same.
func NodePermissions(bucket, node string) *server.Permissions {
	stream := "KV_" + bucket
	return &server.Permissions{
		Publish: &server.SubjectPermission{Allow: []string{
			"$KV." + bucket + "." + node + ".>",
			"$JS.API.INFO",
			"$JS.API.STREAM.INFO." + stream,
			"$JS.API.CONSUMER.CREATE." + stream,
			"$JS.API.CONSUMER.CREATE." + stream + ".>",
			"$JS.API.CONSUMER.DELETE." + stream + ".>",
			"$JS.API.CONSUMER.INFO." + stream + ".>",
			"$JS.API.CONSUMER.MSG.NEXT." + stream + ".>", // the watch's pull consumer
			"$JS.API.DIRECT.GET." + stream + ".>",
			"$JS.FC." + stream + ".>",
			"$JS.ACK." + stream + ".>",
		}},
		Subscribe: &server.SubjectPermission{Allow: []string{"_INBOX.>"}},
	}
}
