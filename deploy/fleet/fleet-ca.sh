#!/bin/sh
# The fleet's CA and the collector's NATS certificate, with openssl (any CA
# works; this is one way). Run on the collector, as root, in a directory of
# your own:
#
#   sh fleet-ca.sh IP:10.0.0.1 [/etc/sysban]
#
# The first argument is the collector's name as the hosts dial it, as a
# subjectAltName (IP:ADDRESS or DNS:NAME). It writes fleet-ca.pem (copy it
# to every host), nats.pem and nats.key into the directory (/etc/sysban by
# default), and leaves the CA's key, fleet-ca.key, in the current directory:
# keep it off the hosts. Nothing is overwritten.
set -eu
san=$1
dir=${2:-/etc/sysban}
for f in fleet-ca.key "$dir/fleet-ca.pem" "$dir/nats.pem" "$dir/nats.key"; do
	if [ -e "$f" ]; then
		echo "fleet-ca.sh: $f exists; not overwriting it" >&2
		exit 1
	fi
done
umask 077
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
	-subj /CN=fleet-ca -keyout fleet-ca.key -out "$dir/fleet-ca.pem"
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=collector \
	-addext "subjectAltName=$san" -keyout "$dir/nats.key" -out nats.csr
openssl x509 -req -in nats.csr -CA "$dir/fleet-ca.pem" -CAkey fleet-ca.key \
	-copy_extensions copy -days 825 -out "$dir/nats.pem"
rm -f nats.csr
chmod 0644 "$dir/fleet-ca.pem" "$dir/nats.pem"
