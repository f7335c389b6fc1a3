package notify

import (
	"context"
	"errors"
	"reflect"
	"testing"
)

type digestOnly struct {
	got []Digest
}

func (d *digestOnly) Notify(context.Context, Event) (bool, error) {
	return false, errors.New("Notify called for a digest")
}

func (d *digestOnly) NotifyDigest(_ context.Context, dg Digest) (bool, error) {
	d.got = append(d.got, dg)
	return false, nil
}

type singleOnly struct{ n int }

func (s *singleOnly) Notify(context.Context, Event) (bool, error) { s.n++; return false, nil }

func TestSend_DigestGoesThroughNotifyDigestSinglesThroughNotify(t *testing.T) {
	dg := &Digest{ID: "dg-1", Events: []Event{{ID: "ev-1", Type: EventOffline}}}
	dn := &digestOnly{}
	if _, err := send(context.Background(), dn, Delivery{EventID: "dg-1", Digest: dg}); err != nil || len(dn.got) != 1 || dn.got[0].ID != "dg-1" {
		t.Fatalf("digest: err %v, got %+v", err, dn.got)
	}
	sn := &singleOnly{}
	if _, err := send(context.Background(), sn, Delivery{EventID: "ev-1", Event: Event{ID: "ev-1"}}); err != nil || sn.n != 1 {
		t.Fatalf("single: err %v, n %d", err, sn.n)
	}
	// A channel type without digests fails the digest permanently, with a
	// reason, rather than dropping its events silently.
	retry, err := send(context.Background(), sn, Delivery{EventID: "dg-1", Digest: dg})
	if err == nil || retry || sn.n != 1 {
		t.Fatalf("digest to a single-only notifier: retry %v err %v", retry, err)
	}
}

func TestDigest_CountsAndGroups(t *testing.T) {
	ev := func(typ, dc, role string) Event {
		return Event{Type: typ, Machine: Machine{Labels: map[string]string{"dc": dc, "role": role}}}
	}
	d := Digest{GroupBy: []string{"dc"}, Events: []Event{
		ev(EventOffline, "fra", "db"), ev(EventOffline, "ams", "web"), ev(EventOnline, "fra", "web"),
		ev(EventOffline, "fra", "web"), ev(EventFlapping, "ams", "db"), {Type: EventOffline},
	}}
	off, on := d.Counts()
	if off != 4 || on != 1 {
		t.Fatalf("counts %d offline %d online", off, on)
	}
	want := []DigestGroup{
		{Labels: map[string]string{"dc": "fra"}, Offline: 2, Online: 1},
		{Labels: map[string]string{"dc": "ams"}, Offline: 1},
		{Labels: map[string]string{"dc": ""}, Offline: 1},
	}
	if got := d.Groups(); !reflect.DeepEqual(got, want) {
		t.Fatalf("groups %+v, want %+v", got, want)
	}
	if (Digest{Events: d.Events}).Groups() != nil {
		t.Fatal("groups without group_by")
	}
}
