package filters_test

import (
	"testing"
)

func TestSquirrelmailFilter(t *testing.T) {
	runCases(t, "squirrelmail", "", []lineCase{
		{"english", "squirrelmail", "[LOGIN_ERROR] bob (example.com) from 192.0.2.7: Unknown user or password incorrect.", "192.0.2.7"},
		{"italian", "squirrelmail", "[LOGIN_ERROR] bob (example.com) from 192.0.2.7: Utente sconosciuto o password errata", "192.0.2.7"},
		{"german file form", "squirrelmail", "10/15/2011 14:31:03 [LOGIN_ERROR] bob (example.com) from 192.0.2.7: Unbekannter Benutzer oder falsches Passwort.", "192.0.2.7"},
		{"japanese", "squirrel_logger", "[LOGIN_ERROR] bob (example.com) from 2001:db8::7: ユーザ名またはパスワードが正しくありません", "2001:db8::7"},
		{"no domain", "squirrelmail", "[LOGIN_ERROR] bob from 192.0.2.7: Unknown user or password incorrect.", "192.0.2.7"},
		// Benign.
		{"login", "squirrelmail", "[LOGIN] bob (example.com) from 192.0.2.7: Successful login", ""},
		{"logout", "squirrelmail", "[LOGOUT] bob (example.com) from 192.0.2.7: Logout", ""},
		{"other program", "apache2", "[LOGIN_ERROR] bob (example.com) from 192.0.2.7: Unknown user or password incorrect.", ""},
		// Hostile: the user name is the attacker's.
		{"user with from", "squirrelmail", "[LOGIN_ERROR] x from 10.0.0.1: y (example.com) from 192.0.2.7: Unknown user or password incorrect.", "192.0.2.7"},
		{"user fakes tag", "squirrelmail", "[LOGIN] [LOGIN_ERROR] x (example.com) from 10.0.0.1: y (example.com) from 192.0.2.7: Successful login", ""},
	})
}
