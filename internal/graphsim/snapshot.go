package graphsim

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
)

// Snapshot collections (role_assignments, role_eligibility_schedules, conditional_access_policies,
// mfa_coverage) have no usable time field: Graph lists them whole, page by page with $skiptoken. Their
// items are few (hundreds to a hundred thousand), so the simulator keeps them in memory, generated from
// the seed on first use, and tests change them at run time with SetItem and RemoveItem.

// snapItem is one item of a snapshot collection.
type snapItem struct {
	id  string
	raw json.RawMessage // the item without its navigation properties
	// principalID and roleDefinitionID resolve $expand=principal,roleDefinition.
	principalID, roleDefinitionID string
	// expanded holds navigation properties given explicitly (SetItem), which $expand returns as given.
	expanded map[string]json.RawMessage
}

// snapshot is a tenant's items of one snapshot dataset, in listing order.
type snapshot struct {
	mu    sync.RWMutex
	items []snapItem
}

// snapshot returns the tenant's collection of def, generating it on first use.
func (td *tenantData) snapshot(def *datasetDef) *snapshot {
	td.snapMu.Lock()
	defer td.snapMu.Unlock()
	if sn, ok := td.snapshots[def.name]; ok {
		return sn
	}
	sn := &snapshot{items: def.generate(td, td.cfg.Datasets[def.name].Count)}
	td.snapshots[def.name] = sn
	return sn
}

// snapCursor is what a snapshot's $skiptoken encodes: the position of the next item and the id of the
// last item served, so that a page boundary survives items added or removed before it.
type snapCursor struct {
	offset int
	lastID string
}

func (c snapCursor) token() string {
	return fmt.Sprintf("%x.%s", c.offset, base64.RawURLEncoding.EncodeToString([]byte(c.lastID)))
}

func parseSnapCursor(tok string) (snapCursor, error) {
	off, id, ok := strings.Cut(tok, ".")
	var c snapCursor
	raw, err := base64.RawURLEncoding.DecodeString(id)
	if _, err2 := fmt.Sscanf(off, "%x", &c.offset); !ok || err != nil || err2 != nil || c.offset < 0 {
		return snapCursor{}, errors.New("invalid $skiptoken")
	}
	c.lastID = string(raw)
	if c.token() != tok {
		return snapCursor{}, errors.New("invalid $skiptoken")
	}
	return c, nil
}

// page returns up to top items from cur (nil = the start) and the cursor of the next page.
func (sn *snapshot) page(cur *snapCursor, top int) ([]snapItem, *snapCursor) {
	sn.mu.RLock()
	defer sn.mu.RUnlock()
	start := 0
	if cur != nil {
		start = min(cur.offset, len(sn.items))
		for k, it := range sn.items {
			if it.id == cur.lastID {
				start = k + 1
				break
			}
		}
	}
	end := min(start+top, len(sn.items))
	out := append([]snapItem(nil), sn.items[start:end]...)
	if end < len(sn.items) {
		return out, &snapCursor{offset: end, lastID: out[len(out)-1].id}
	}
	return out, nil
}

func (sn *snapshot) set(it snapItem) {
	sn.mu.Lock()
	defer sn.mu.Unlock()
	for k := range sn.items {
		if sn.items[k].id == it.id {
			sn.items[k] = it
			return
		}
	}
	sn.items = append(sn.items, it)
}

func (sn *snapshot) remove(id string) bool {
	sn.mu.Lock()
	defer sn.mu.Unlock()
	for k := range sn.items {
		if sn.items[k].id == id {
			sn.items = append(sn.items[:k], sn.items[k+1:]...)
			return true
		}
	}
	return false
}

func (sn *snapshot) ids() []string {
	sn.mu.RLock()
	defer sn.mu.RUnlock()
	out := make([]string, len(sn.items))
	for k, it := range sn.items {
		out[k] = it.id
	}
	return out
}

// newSnapItem makes an item of def from a Graph JSON object. For datasets with navigation properties,
// the ones present in obj are kept apart and served only with $expand.
func newSnapItem(def *datasetDef, obj map[string]any) (snapItem, error) {
	id, _ := obj["id"].(string)
	if id == "" {
		return snapItem{}, fmt.Errorf("a %s item needs a string `id`", def.name)
	}
	it := snapItem{id: id}
	if len(def.expandable) > 0 {
		it.principalID, _ = obj["principalId"].(string)
		it.roleDefinitionID, _ = obj["roleDefinitionId"].(string)
		rest := make(map[string]any, len(obj))
		for k, v := range obj {
			rest[k] = v
		}
		for _, nav := range def.expandable {
			if v, ok := rest[nav]; ok {
				raw, err := json.Marshal(v)
				if err != nil {
					return snapItem{}, err
				}
				if it.expanded == nil {
					it.expanded = map[string]json.RawMessage{}
				}
				it.expanded[nav] = raw
				delete(rest, nav)
			}
		}
		obj = rest
	}
	raw, err := json.Marshal(obj)
	if err != nil {
		return snapItem{}, err
	}
	it.raw = raw
	return it, nil
}

// render writes the item with the navigation properties asked for.
func (td *tenantData) render(buf *bytes.Buffer, it snapItem, expand []string) {
	if len(expand) == 0 {
		buf.Write(it.raw)
		return
	}
	buf.Write(bytes.TrimSuffix(bytes.TrimSpace(it.raw), []byte("}")))
	for _, nav := range expand {
		buf.WriteString(`,"`)
		buf.WriteString(nav)
		buf.WriteString(`":`)
		buf.Write(td.expansion(nav, it))
	}
	buf.WriteByte('}')
}

// expansion resolves a navigation property: as given to SetItem, else by looking the id up in the
// tenant's pools (a principal that is not a pool user, or an unknown role, expands to null).
func (td *tenantData) expansion(nav string, it snapItem) json.RawMessage {
	if raw, ok := it.expanded[nav]; ok {
		return raw
	}
	switch nav {
	case "principal":
		if k, ok := td.userIndex[it.principalID]; ok {
			return mustJSON(principalOf(td, td.users[k]))
		}
	case "roleDefinition":
		for _, rd := range roleDefinitions {
			if rd.id == it.roleDefinitionID {
				return mustJSON(roleDefinitionOf(rd))
			}
		}
	}
	return json.RawMessage("null")
}

// expandedContext is the @odata.context of a page: Graph names the expanded properties.
func expandedContext(def *datasetDef, expand []string) string {
	if len(expand) == 0 {
		return def.context
	}
	parts := make([]string, len(expand))
	for k, e := range expand {
		parts[k] = e + "()"
	}
	return def.context + "(" + strings.Join(parts, ",") + ")"
}
