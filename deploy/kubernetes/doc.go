// Package kubernetes holds sysban's Kubernetes manifests and the test that
// decodes each one strictly into the Kubernetes API types. It is a package
// of its own so the k8s.io modules are dependencies of this test only,
// never of the daemon.
package kubernetes
