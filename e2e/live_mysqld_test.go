package e2e

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"strings"
	"testing"
)

// liveMySQLConfig is the option file of the test's own MariaDB server; %[1]s
// is its directory. Everything it opens is under that directory or in the
// server namespace (port 3306 there), so it never meets a system mysqld.
// mysqld_safe's [mysqld_safe] group is Debian's default: the server's error
// log goes to syslog through logger -t mysqld (daemon.error).
const liveMySQLConfig = `[mysqld]
user = mysql
datadir = %[1]s/data
socket = %[1]s/mysqld.sock
pid-file = %[1]s/mysqld.pid
port = 3306
bind-address = *
skip-name-resolve
log_warnings = 2
skip-log-bin
innodb_buffer_pool_size = 16M
innodb_log_file_size = 8M
performance_schema = OFF

[mysqld_safe]
skip_log_error
syslog
`

// TestLiveMySQLD drives the distribution's MariaDB server, started by
// mysqld_safe with its log to syslog as Debian configures it, with the real
// mariadb client: wrong passwords (IPv4, IPv6), no password, an unknown
// user, and a login that works.
func TestLiveMySQLD(t *testing.T) {
	version := needLive(t, "mariadb-server", "/usr/bin/mysqld_safe", "/usr/sbin/mariadbd", "mariadb-install-db", "mariadb")
	mysql, err := user.Lookup("mysql")
	if err != nil {
		t.Skipf("live mysqld test needs the mysql user of mariadb-server: %v", err)
	}
	l := newLive(t, "mysqld", version, liveConfig(liveJail("mysqld", "mysqld", "3306", "tcp")))
	l.exact, l.port = true, 3306
	dir := l.path("mysql")
	cnf := l.write("mysql/my.cnf", fmt.Sprintf(liveMySQLConfig, dir), 0o644)
	uid, _ := strconv.Atoi(mysql.Uid)
	gid, _ := strconv.Atoi(mysql.Gid)
	os.MkdirAll(dir+"/data", 0o755)
	os.Chown(dir, uid, gid)
	os.Chown(dir+"/data", uid, gid)
	if out, err := exec.Command("mariadb-install-db", "--defaults-file="+cnf, "--skip-test-db").CombinedOutput(); err != nil {
		t.Fatalf("mariadb-install-db: %v\n%s", err, out)
	}
	l.spawn("/usr/bin/mysqld_safe", "--defaults-file="+cnf)
	l.waitPort("tcp", serverV4, 3306)
	// root logs in over the socket by unix_socket: it makes the test user.
	admin := exec.Command("mariadb", "--no-defaults", "--socket="+dir+"/mysqld.sock", "-u", "root", "-e",
		fmt.Sprintf("CREATE USER '%s'@'%%' IDENTIFIED BY '%s'", liveUser, livePassword))
	if out, err := admin.CombinedOutput(); err != nil {
		t.Fatalf("create the test user: %v\n%s", err, out)
	}
	login := func(user string, password ...string) func(string) error {
		return func(from string) error {
			args := []string{"-u", user}
			for _, p := range password {
				args = append(args, "-p"+p)
			}
			return l.mariadb(from, args...)
		}
	}
	clean := l.succeed(family{"login", "mysqld", false, login(liveUser, livePassword)})
	l.drive(
		family{"password", "mysqld", false, login(liveUser, "wrong")},
		family{"password", "mysqld", true, login(liveUser, "wrong")},
		family{"no password", "mysqld", false, login(liveUser)},
		family{"unknown user", "mysqld", false, login("nosuchuser", "wrong")},
	)
	l.assertBans(3306, clean, "password")
	l.alive()
}

// mariadb runs the real mariadb client with args as a connection from the
// outside address from. The client cannot choose its source address, so
// it talks to a unix socket whose one connection the test relays to the
// server's port 3306 from from: the bytes are the client's own.
func (l *live) mariadb(from string, args ...string) error {
	sock := l.path("mariadb-relay.sock")
	os.Remove(sock)
	ln, err := net.Listen("unix", sock)
	if err != nil {
		return err
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		s, err := l.dialFrom(from, 3306)
		if err != nil {
			return
		}
		defer s.Close()
		go func() { io.Copy(s, c); s.(*net.TCPConn).CloseWrite() }()
		io.Copy(c, s)
	}()
	full := append([]string{"--no-defaults", "--protocol=socket", "--socket=" + sock, "--connect-timeout=10"}, args...)
	out, err := exec.Command("mariadb", append(full, "-e", "SELECT 1")...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("mariadb: %v: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}
