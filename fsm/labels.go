package fsm

import (
	"slices"
	"strings"
)

// labelSet is one distinct set of labels shared by every machine that has
// it. Fleets have few distinct sets (env, role, region...) and many
// machines: sharing them saves a map and its strings per machine, about a
// third of a labelled machine's memory at a million machines.
type labelSet struct {
	labels map[string]string
	refs   int
}

// labelKey is a canonical encoding of a label set.
func labelKey(l map[string]string) string {
	keys := make([]string, 0, len(l))
	for k := range l {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(k)
		b.WriteByte(0)
		b.WriteString(l[k])
		b.WriteByte(0)
	}
	return b.String()
}

// internLabels returns the shared map equal to l. Shared maps are never
// mutated: queries hand out clones. The caller holds the write lock.
func (f *FSM) internLabels(l map[string]string) map[string]string {
	if len(l) == 0 {
		return nil
	}
	key := labelKey(l)
	if s, ok := f.labelSets[key]; ok {
		s.refs++
		return s.labels
	}
	f.labelSets[key] = &labelSet{labels: l, refs: 1}
	return l
}

// releaseLabels drops one machine's reference to its label set.
func (f *FSM) releaseLabels(l map[string]string) {
	if len(l) == 0 {
		return
	}
	key := labelKey(l)
	if s, ok := f.labelSets[key]; ok {
		if s.refs--; s.refs <= 0 {
			delete(f.labelSets, key)
		}
	}
}
