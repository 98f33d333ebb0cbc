// Package notify tells people and other programs about bans: it is sysban's
// action stage, the replacement for fail2ban's sendmail-whois and custom
// actions.
//
// Its one job: take a copy of every ban and unban (an Event) and deliver it,
// off the hot path, to the actions configured for the event's jail — mail over
// SMTP (optionally with a whois of the address), a JSON webhook, or a command
// run with an argument vector (never a shell).
//
// Bans never pass through here: the firewall stage has already applied a ban
// before its Event is handed to a Dispatcher, and Dispatcher.Notify never
// blocks. Each action has its own bounded queue and worker, so a dead mail
// relay or a hung hook fills only its own queue; once full, new events for that
// action are dropped and counted rather than held in memory.
//
// Everything in an Event that came from a log line (and, through the jail's
// patterns, the address) was written by whoever sysban is banning, so every
// output format here treats it as hostile: mail headers cannot be injected,
// webhook bodies are JSON-encoded, and command arguments are substituted one
// argument at a time with no shell to reinterpret them.
package notify
