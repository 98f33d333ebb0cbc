package kubernetes

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/sysban/sysban/config"
	"github.com/sysban/sysban/receiver"
)

// image is what the Containerfile builds (podman build -t sysban).
const image = "localhost/sysban:latest"

// objects are the decoded documents of one manifest file.
type objects struct {
	configMaps map[string]*corev1.ConfigMap
	daemonSets []*appsv1.DaemonSet
	pods       []*corev1.Pod
}

// decode splits path into its YAML documents and decodes each strictly
// into its Kubernetes API type: an unknown or duplicate field, a kind the
// test does not know, or a wrong type is an error.
func decode(t *testing.T, path string) objects {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	objs := objects{configMaps: map[string]*corev1.ConfigMap{}}
	for i, doc := range bytes.Split(b, []byte("\n---\n")) {
		var meta metav1.TypeMeta
		if err := yaml.Unmarshal(doc, &meta); err != nil {
			t.Fatalf("%s document %d: %v", path, i, err)
		}
		var obj any
		switch meta.APIVersion + " " + meta.Kind {
		case "v1 Namespace":
			obj = &corev1.Namespace{}
		case "v1 ConfigMap":
			obj = &corev1.ConfigMap{}
		case "apps/v1 DaemonSet":
			ds := &appsv1.DaemonSet{}
			obj = ds
			objs.daemonSets = append(objs.daemonSets, ds)
		case "v1 Pod":
			p := &corev1.Pod{}
			obj = p
			objs.pods = append(objs.pods, p)
		default:
			t.Fatalf("%s document %d: kind %q %q not checked by this test", path, i, meta.APIVersion, meta.Kind)
		}
		if err := yaml.UnmarshalStrict(doc, obj); err != nil {
			t.Fatalf("%s document %d (%s): %v", path, i, meta.Kind, err)
		}
		if cm, ok := obj.(*corev1.ConfigMap); ok {
			objs.configMaps[cm.Name] = cm
		}
	}
	return objs
}

func TestStrictDecodingRejectsUnknownFields(t *testing.T) {
	bad := []byte("apiVersion: v1\nkind: Pod\nmetadata: {name: x}\nspec:\n  containers:\n  - name: a\n    image: b\n    capabilitys: {}\n")
	if err := yaml.UnmarshalStrict(bad, &corev1.Pod{}); err == nil || !strings.Contains(err.Error(), "capabilitys") {
		t.Fatalf("a misspelt field decoded: %v", err)
	}
}

// sysbanSetup is what a sysban container needs, read from its config.
type sysbanSetup struct {
	stateDir, socketDir string // must be writable mounts
	unixDirs            []string
}

// checkSysban checks one sysban container of a pod spec: the image, only
// CAP_NET_ADMIN, no privilege escalation, a read-only root, and a mount
// for every path its config (from the ConfigMap it mounts, loaded with
// sysban's own loader) writes to. It returns the volumes by mount path.
func checkSysban(t *testing.T, objs objects, spec *corev1.PodSpec, c corev1.Container) (sysbanSetup, map[string]corev1.Volume) {
	t.Helper()
	if c.Image != image {
		t.Errorf("container %s: image %q, want %q", c.Name, c.Image, image)
	}
	sc := c.SecurityContext
	if sc == nil || sc.Capabilities == nil {
		t.Fatalf("container %s: no securityContext.capabilities", c.Name)
	}
	if !slices.Equal(sc.Capabilities.Add, []corev1.Capability{"NET_ADMIN"}) || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
		t.Errorf("container %s: capabilities add %v drop %v, want add [NET_ADMIN] drop [ALL]", c.Name, sc.Capabilities.Add, sc.Capabilities.Drop)
	}
	if sc.Privileged != nil && *sc.Privileged {
		t.Errorf("container %s is privileged", c.Name)
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Errorf("container %s: allowPrivilegeEscalation must be false", c.Name)
	}
	if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Errorf("container %s: readOnlyRootFilesystem must be true", c.Name)
	}
	if len(c.Args) != 3 || c.Args[0] != "run" || c.Args[1] != "--config" {
		t.Fatalf("container %s: args %v, want run --config FILE", c.Name, c.Args)
	}
	volumes := map[string]corev1.Volume{}
	byName := map[string]corev1.Volume{}
	for _, v := range spec.Volumes {
		byName[v.Name] = v
	}
	for _, m := range c.VolumeMounts {
		v, ok := byName[m.Name]
		if !ok {
			t.Fatalf("container %s mounts volume %s, which the pod does not define", c.Name, m.Name)
		}
		volumes[m.MountPath] = v
	}
	cfgPath := c.Args[2]
	cfgVol, ok := volumes[filepath.Dir(cfgPath)]
	if !ok || cfgVol.ConfigMap == nil {
		t.Fatalf("container %s: %s is not in a mounted ConfigMap", c.Name, cfgPath)
	}
	cm := objs.configMaps[cfgVol.ConfigMap.Name]
	if cm == nil {
		t.Fatalf("ConfigMap %s is not in the file", cfgVol.ConfigMap.Name)
	}
	text, ok := cm.Data[filepath.Base(cfgPath)]
	if !ok {
		t.Fatalf("ConfigMap %s has no key %s", cm.Name, filepath.Base(cfgPath))
	}
	tmp := filepath.Join(t.TempDir(), "sysban.yaml")
	if err := os.WriteFile(tmp, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(tmp, nil)
	if err != nil {
		t.Fatalf("ConfigMap %s: sysban refuses its config: %v", cm.Name, err)
	}
	setup := sysbanSetup{stateDir: cfg.State.Dir, socketDir: filepath.Dir(cfg.Control.Socket)}
	for _, s := range cfg.Listen.Specs {
		if s.Network == receiver.UnixGram || s.Network == receiver.UnixStream {
			setup.unixDirs = append(setup.unixDirs, filepath.Dir(s.Address))
		}
	}
	for _, dir := range append([]string{setup.stateDir, setup.socketDir}, setup.unixDirs...) {
		v, ok := volumes[dir]
		if !ok || v.ConfigMap != nil {
			t.Errorf("container %s writes to %s (its config) but has no writable volume there", c.Name, dir)
		}
	}
	return setup, volumes
}

func TestDaemonSet(t *testing.T) {
	objs := decode(t, "daemonset.yaml")
	if len(objs.daemonSets) != 1 {
		t.Fatalf("%d DaemonSets, want 1", len(objs.daemonSets))
	}
	ds := objs.daemonSets[0]
	spec := &ds.Spec.Template.Spec
	if !spec.HostNetwork {
		t.Error("the DaemonSet must use the host network: its bans are for the node")
	}
	if len(spec.Containers) != 1 {
		t.Fatalf("%d containers", len(spec.Containers))
	}
	setup, volumes := checkSysban(t, objs, spec, spec.Containers[0])
	if v := volumes[setup.stateDir]; v.HostPath == nil || v.HostPath.Path != setup.stateDir {
		t.Errorf("state %s must be the node's own directory (hostPath), so bans survive the pod: %+v", setup.stateDir, v.VolumeSource)
	}
	for _, dir := range setup.unixDirs {
		if v := volumes[dir]; v.HostPath == nil {
			t.Errorf("unix socket directory %s must be the node's (hostPath) for node programs to log to it", dir)
		}
	}
}

func TestSidecarPod(t *testing.T) {
	objs := decode(t, "sidecar-pod.yaml")
	if len(objs.pods) != 1 {
		t.Fatalf("%d Pods, want 1", len(objs.pods))
	}
	spec := &objs.pods[0].Spec
	if spec.HostNetwork {
		t.Error("the sidecar must stay in the pod's network namespace")
	}
	var sidecar *corev1.Container
	for i, c := range spec.InitContainers {
		if c.Image == image {
			sidecar = &spec.InitContainers[i]
		}
	}
	if sidecar == nil {
		t.Fatal("no sysban init container (native sidecar)")
	}
	if sidecar.RestartPolicy == nil || *sidecar.RestartPolicy != corev1.ContainerRestartPolicyAlways {
		t.Error("the sysban init container needs restartPolicy: Always to run beside the app")
	}
	setup, volumes := checkSysban(t, objs, spec, *sidecar)
	if len(setup.unixDirs) == 0 {
		t.Fatal("the sidecar's config listens on no unix socket")
	}
	// The app mounts the same emptyDir where sysban's socket is.
	for _, dir := range setup.unixDirs {
		v := volumes[dir]
		if v.EmptyDir == nil {
			t.Errorf("socket directory %s: want an emptyDir shared with the app, got %+v", dir, v.VolumeSource)
		}
		shared := false
		for _, c := range spec.Containers {
			for _, m := range c.VolumeMounts {
				if m.Name == v.Name && m.MountPath == dir {
					shared = true
				}
			}
		}
		if !shared {
			t.Errorf("no app container mounts %s at %s", v.Name, dir)
		}
	}
}
