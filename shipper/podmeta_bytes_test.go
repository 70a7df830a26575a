package shipper

import (
	"fmt"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/twmb/franz-go/pkg/kgo"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sluicelog/sluice/internal/event"
	"github.com/sluicelog/sluice/shipper/kubernetes"
)

// BenchmarkPodMetadataBytes measures the Kafka bytes of a container line
// without and with its pod's metadata: a record's key, value and headers
// as they are, and zstd (level 1, as the producer's) over batches of 1
// record (a quiet pod: each line its own batch) and of 100. Run with
// -bench PodMetadataBytes -benchtime 1x; the figures are reported as
// metrics (README, Kubernetes).
func BenchmarkPodMetadataBytes(b *testing.B) {
	id := "3f1c9a0e5b7d2c4a6e8f0b1d3c5e7a9b2d4f6a8c0e1b3d5f7a9c2e4b6d8f0a1c"
	path := "/var/log/containers/checkout-7d9f8b6c5d-x2x9q_shop_app-" + id + ".log"
	base := map[string]string{"service": "kubernetes", "environment": "production"}
	kubernetesFields(path, base)

	ctrl := true
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "checkout-7d9f8b6c5d-x2x9q", Namespace: "shop", UID: "4b1f0b7e-6c2d-4f5a-9e8b-1a2b3c4d5e6f",
			Labels: map[string]string{"app.kubernetes.io/name": "checkout", "app.kubernetes.io/instance": "checkout-prod",
				"app.kubernetes.io/version": "1.4.2", "app.kubernetes.io/part-of": "shop", "pod-template-hash": "7d9f8b6c5d"},
			OwnerReferences: []metav1.OwnerReference{{Kind: "ReplicaSet", Name: "checkout-7d9f8b6c5d", Controller: &ctrl}}},
		Spec:   corev1.PodSpec{NodeName: "ip-10-0-12-34.eu-west-1.compute.internal", Containers: []corev1.Container{{Name: "app", Image: "registry.example.com/shop/checkout:1.4.2"}}},
		Status: corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{{Name: "app", ContainerID: "containerd://" + id}}},
	}
	cfg := kubernetes.Config{Environments: []kubernetes.EnvironmentRule{{Namespace: "*", Environment: "production"}}}
	cfg.SetDefaults()
	meta := kubernetes.PodContainers(pod, nil, cfg)["app"]
	with := map[string]string{}
	for k, v := range base {
		with[k] = v
	}
	for k, v := range meta.Fields {
		with[k] = v
	}

	for _, c := range []struct {
		name   string
		fields map[string]string
	}{{"path_fields", base}, {"pod_metadata", with}} {
		b.Run(c.name, func(b *testing.B) {
			raw, one, hundred := recordBytes(b, path, c.fields)
			b.ReportMetric(raw, "raw_bytes/line")
			b.ReportMetric(one, "zstd_batch1_bytes/line")
			b.ReportMetric(hundred, "zstd_batch100_bytes/line")
		})
	}
}

// recordBytes returns the bytes per line of records of a typical JSON
// line with fields: raw, and zstd-compressed in batches of 1 and 100.
func recordBytes(b *testing.B, path string, fields map[string]string) (raw, one, hundred float64) {
	hdr := event.EncodeFields(fields)
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest))
	if err != nil {
		b.Fatal(err)
	}
	ev := event.Event{Type: "container", Node: "ip-10-0-12-34.eu-west-1.compute.internal", Path: path, FileID: "f3a9c1d2e4b5a6c7", Fields: fields,
		Stream: "stdout", LogTime: time.Unix(1764064800, 123456789)}
	var batch []byte
	var total int
	const n = 100
	for i := range n {
		ev.Offset, ev.ReadTime = int64(i*120), time.Unix(1764064800, int64(i))
		ev.Line = fmt.Appendf(nil, `{"@timestamp":"2026-11-25T10:00:00.%03dZ","level":"info","message":"order placed","order":"o-%06d","duration_ms":%d}`, i, 100000+i, i%50)
		r := ev.Record("logs-container", hdr)
		rec := appendRecord(nil, r)
		total += len(rec)
		if i == 0 {
			one = float64(len(enc.EncodeAll(rec, nil)))
		}
		batch = append(batch, rec...)
	}
	return float64(total) / n, one, float64(len(enc.EncodeAll(batch, nil))) / n
}

// appendRecord appends r as a Kafka record body's parts: key, value,
// header keys and values, each behind a one-byte length (varints of small
// values; the rest of the record's framing is a few bytes alike for
// both).
func appendRecord(dst []byte, r *kgo.Record) []byte {
	dst = append(append(dst, byte(len(r.Key))), r.Key...)
	dst = append(append(dst, byte(len(r.Value))), r.Value...)
	for _, h := range r.Headers {
		dst = append(append(dst, byte(len(h.Key))), h.Key...)
		dst = append(append(dst, byte(len(h.Value))), h.Value...)
	}
	return dst
}
