package e2e

import (
	"encoding/base64"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// liveJail is a jail of filter on ports for the live tests.
func liveJail(name, filter, ports, protocol string) string {
	return fmt.Sprintf(`
  %s:
    enabled: true
    filter: %s
    maxretry: %d
    findtime: 10m
    bantime: 1h
    ports: [%s]
    protocol: %s
`, name, filter, liveMaxRetry, ports, protocol)
}

// liveConfig is a sysban config with sshd off and the jails given.
func liveConfig(jails ...string) string {
	return "jails:\n  sshd:\n    enabled: false\n" + strings.Join(jails, "")
}

// TestLiveVsftpd drives the distribution's vsftpd (PAM, dual-stack listener
// as Debian ships it, its own log lines sent to syslog).
func TestLiveVsftpd(t *testing.T) {
	version := needLive(t, "vsftpd", "/usr/sbin/vsftpd", "openssl")
	l := newLive(t, "vsftpd", version, liveConfig(liveJail("vsftpd", "vsftpd", "21", "tcp")))
	l.exact, l.port = true, 21
	l.noPAMDelay()
	cfg := l.write("vsftpd.conf", `listen=NO
listen_ipv6=YES
listen_port=21
background=NO
syslog_enable=YES
xferlog_enable=YES
xferlog_std_format=NO
anonymous_enable=NO
local_enable=YES
pam_service_name=vsftpd
secure_chroot_dir=/var/run/vsftpd/empty
seccomp_sandbox=NO
delay_failed_login=0
`, 0o600)
	l.spawn("/usr/sbin/vsftpd", cfg)
	l.waitPort("tcp", serverV4, 21)
	ftp := func(user, password string) func(string) error { return l.ftpLogin(21, user, password) }
	clean := l.succeed(family{"success", "vsftpd", false, ftp(liveUser, livePassword)})
	l.drive(
		family{"password", "vsftpd", false, ftp(liveUser, "wrong")},
		family{"password", "vsftpd", true, ftp(liveUser, "wrong")},
		family{"unknown user", "vsftpd", false, ftp("nosuchuser", "wrong")},
	)
	l.assertBans(21, clean, "password")
	l.alive()
}

// ftpLogin logs in with USER/PASS on port and quits; the error carries a
// reply other than 230.
func (l *live) ftpLogin(port int, user, password string) func(string) error {
	return func(from string) error {
		s, err := l.greeted(from, port, finalReply)
		if err != nil {
			return err
		}
		defer s.c.Close()
		if _, err := s.send("USER "+user, finalReply); err != nil {
			return err
		}
		last, err := s.send("PASS "+password, finalReply)
		if err != nil {
			return err
		}
		s.send("QUIT", finalReply)
		if !strings.HasPrefix(last, "230") {
			return fmt.Errorf("ftp: %s", last)
		}
		return nil
	}
}

// TestLiveNamed drives the distribution's BIND 9: queries for a zone it
// does not serve (recursion off: refused) and a denied zone transfer, from a
// real resolver client (dig).
func TestLiveNamed(t *testing.T) {
	version := needLive(t, "bind9", "/usr/sbin/named", "dig")
	l := newLive(t, "named", version, liveConfig(liveJail("named", "named", "53", "all")))
	l.exact, l.port = true, 53
	l.known = map[string]string{"refused query": "BIND logs nothing for a REFUSED query of a zone it does not serve (recursion off): nothing to count"}
	l.write("named/example.test.zone", `$TTL 300
@ IN SOA ns.example.test. hostmaster.example.test. 1 3600 600 86400 300
@ IN NS ns.example.test.
ns IN A 192.0.2.1
www IN A 192.0.2.80
`, 0o644)
	cfg := l.write("named.conf", fmt.Sprintf(`options {
	directory "%[1]s/named";
	pid-file "%[1]s/named.pid";
	session-keyfile "%[1]s/session.key";
	listen-on port 53 { 192.0.2.1; };
	listen-on-v6 port 53 { 2001:db8::1; };
	recursion no;
	allow-query-cache { none; };
	allow-transfer { none; };
	dnssec-validation no;
};
controls { };
zone "example.test" { type primary; file "%[1]s/named/example.test.zone"; };
zone "private.test" { type primary; file "%[1]s/named/example.test.zone"; allow-query { 127.0.0.1; }; };
`, l.dir), 0o644)
	// Debian's AppArmor profile for /usr/sbin/named (enforced where
	// AppArmor is on) keeps it from reading a config under /tmp; the
	// profile attaches by path, so the test runs a copy of the binary.
	bin, err := os.ReadFile("/usr/sbin/named")
	if err != nil {
		t.Fatal(err)
	}
	named := l.write("named-bin/named", string(bin), 0o755)
	l.spawn(named, "-f", "-c", cfg)
	l.waitPort("tcp", serverV4, 53)
	dig := func(args ...string) func(string) error {
		return func(from string) error {
			full := append([]string{"netns", "exec", l.out, "dig", "-b", from, "@" + server(from), "+tries=1", "+time=2"}, args...)
			out, err := exec.Command("ip", full...).CombinedOutput()
			if err != nil {
				return fmt.Errorf("dig: %v: %s", err, out)
			}
			if strings.Contains(string(out), "status: REFUSED") || strings.Contains(string(out), "Transfer failed") {
				return fmt.Errorf("refused")
			}
			return nil
		}
	}
	clean := l.succeed(family{"query of the served zone", "named", false, dig("www.example.test", "A")})
	l.drive(
		family{"refused query", "named", false, dig("www.other.test", "A")},
		family{"refused query", "named", true, dig("www.other.test", "A")},
		family{"denied query (allow-query)", "named", false, dig("www.private.test", "A")},
		family{"denied AXFR", "named", false, dig("example.test", "AXFR")},
	)
	l.assertBans(53, clean, "denied AXFR")
	l.alive()
}

// liveHTPasswd writes an htpasswd file (MD5-crypt, which Apache and nginx
// both read) with the test user.
func (l *live) liveHTPasswd() string {
	l.t.Helper()
	out, err := exec.Command("htpasswd", "-nbm", liveUser, livePassword).Output()
	if err != nil {
		l.t.Fatalf("htpasswd: %v", err)
	}
	return l.write("htpasswd", strings.TrimSpace(string(out))+"\n", 0o644)
}

// httpGet makes one HTTP/1.0 request for path with basic auth user:password
// (none when user is ""); the error carries a status other than 2xx.
func (l *live) httpGet(port int, path, user, password string) func(string) error {
	return func(from string) error {
		c, err := l.session(from, port)
		if err != nil {
			return err
		}
		defer c.Close()
		req := "GET " + path + " HTTP/1.0\r\nHost: live.test\r\n"
		if user != "" {
			req += "Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password)) + "\r\n"
		}
		if _, err := io.WriteString(c, req+"\r\n"); err != nil {
			return err
		}
		b, err := io.ReadAll(c)
		status, _, _ := strings.Cut(string(b), "\r\n")
		if err != nil {
			return err
		}
		if !strings.Contains(status, " 2") {
			return fmt.Errorf("http: %s", status)
		}
		return nil
	}
}

// TestLiveApache drives the distribution's Apache 2.4 (prefork, error log
// to syslog): basic-auth failures and probes for missing scripts and pages.
func TestLiveApache(t *testing.T) {
	version := needLive(t, "apache2", "/usr/sbin/apache2", "htpasswd")
	l := newLive(t, "apache", version, liveConfig(liveJail("apache", "apache", "80", "tcp")))
	l.exact, l.port = true, 80
	l.write("www/index.html", "hello\n", 0o644)
	l.write("www/private/index.html", "secret\n", 0o644)
	os.MkdirAll(l.path("cgi-bin"), 0o755)
	mods := "/usr/lib/apache2/modules/"
	var conf strings.Builder
	for _, m := range []string{"mpm_prefork", "authz_core", "authz_user", "authn_core", "authn_file", "auth_basic", "alias", "cgi", "dir", "mime"} {
		fmt.Fprintf(&conf, "LoadModule %s_module %smod_%s.so\n", m, mods, m)
	}
	fmt.Fprintf(&conf, `ServerName live.test
Listen 192.0.2.1:80
Listen [2001:db8::1]:80
PidFile %[1]s/apache.pid
DefaultRuntimeDir %[1]s
Mutex file:%[1]s default
User www-data
Group www-data
ErrorLog syslog:local7
LogLevel info
TypesConfig /etc/mime.types
DocumentRoot %[1]s/www
DirectoryIndex index.html
<Directory />
	Require all granted
</Directory>
<Location /private>
	AuthType Basic
	AuthName "live"
	AuthUserFile %[2]s
	Require valid-user
</Location>
ScriptAlias /cgi-bin/ %[1]s/cgi-bin/
`, l.dir, l.liveHTPasswd())
	cfg := l.write("apache2.conf", conf.String(), 0o644)
	l.spawn("/usr/sbin/apache2", "-f", cfg, "-DFOREGROUND")
	l.waitPort("tcp", serverV4, 80)
	clean := l.succeed(l.webSuccesses("apache", 80)...)
	l.drive(append(l.basicAuthFailures("apache", 80),
		family{"missing script", "apache", false, l.httpGet(80, "/cgi-bin/nothere.cgi", "", "")},
		family{"missing page", "apache", false, l.httpGet(80, "/wp-login.php", "", "")})...)
	l.alive()
	_ = clean
}

// TestLiveNginx drives the distribution's nginx (error log to syslog):
// basic-auth failures (filter nginx-http-auth) and limit_req rejections
// (its ddos mode), one line per attempt.
func TestLiveNginx(t *testing.T) {
	version := needLive(t, "nginx", "/usr/sbin/nginx", "htpasswd")
	l := newLive(t, "nginx", version, liveConfig(
		liveJail("nginx-http-auth", "nginx-http-auth", "8080", "tcp"),
		liveJail("nginx-limit", "nginx-http-auth", "8080", "tcp")+"    mode: ddos\n"))
	l.exact, l.port = true, 8080
	l.known = map[string]string{"limit_req": "the first request within the rate passes (no line): the ban comes one request later"}
	cfg := l.write("nginx.conf", fmt.Sprintf(`daemon off;
pid %[1]s/nginx.pid;
error_log syslog:server=unix:/dev/log,nohostname info;
events { }
http {
	access_log off;
	client_body_temp_path %[1]s/nginx-body;
	proxy_temp_path %[1]s/nginx-proxy;
	fastcgi_temp_path %[1]s/nginx-fastcgi;
	uwsgi_temp_path %[1]s/nginx-uwsgi;
	scgi_temp_path %[1]s/nginx-scgi;
	limit_req_zone $binary_remote_addr zone=live:1m rate=1r/m;
	server {
		listen 192.0.2.1:8080;
		listen [2001:db8::1]:8080;
		root %[1]s/www;
		location /private/ {
			auth_basic "live";
			auth_basic_user_file %[2]s;
		}
		location /limited/ {
			limit_req zone=live;
		}
	}
}
`, l.dir, l.liveHTPasswd()), 0o644)
	for _, page := range []string{"index.html", "private/index.html", "limited/index.html"} {
		l.write("www/"+page, "hello\n", 0o644)
	}
	l.spawn("/usr/sbin/nginx", "-c", cfg)
	l.waitPort("tcp", serverV4, 8080)
	l.succeed(l.webSuccesses("nginx-http-auth", 8080)...)
	l.drive(append(l.basicAuthFailures("nginx-http-auth", 8080),
		family{"limit_req", "nginx-limit", false, l.httpGet(8080, "/limited/", "", "")})...)
	l.alive()
}

// webSuccesses are a page and a basic-auth login to /private/ that work.
func (l *live) webSuccesses(jail string, port int) []family {
	return []family{
		{"page", jail, false, l.httpGet(port, "/", "", "")},
		{"basic-auth success", jail, false, l.httpGet(port, "/private/", liveUser, livePassword)},
	}
}

// basicAuthFailures are wrong basic-auth passwords (IPv4, IPv6) and an
// unknown user for /private/.
func (l *live) basicAuthFailures(jail string, port int) []family {
	return []family{
		{"basic-auth password", jail, false, l.httpGet(port, "/private/", liveUser, "wrong")},
		{"basic-auth password", jail, true, l.httpGet(port, "/private/", liveUser, "wrong")},
		{"basic-auth unknown user", jail, false, l.httpGet(port, "/private/", "nosuchuser", "wrong")},
	}
}

// assertBans checks what holds today for the named family: after its
// attempts every address that made them is banned and its packets to port
// dropped; the clean address is neither.
func (l *live) assertBans(port int, clean, name string) {
	l.t.Helper()
	for _, a := range l.rows {
		if a.family != name {
			continue
		}
		if !l.isBanned(a.jail+setSuffix(a.from), a.from) {
			l.t.Errorf("%s: %d attempts from %s: not banned (maxretry %d)", name, liveMaxRetry, a.from, liveMaxRetry)
		} else if !l.dropped(a.from, port) {
			l.t.Errorf("%s banned but still connects to port %d", a.from, port)
		}
	}
	if l.isBanned(l.rows[0].jail+"_v4", clean) || l.dropped(clean, port) {
		l.t.Errorf("the clean client %s is banned", clean)
	}
}
