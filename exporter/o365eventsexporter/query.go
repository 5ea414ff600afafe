package o365eventsexporter

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"strconv"
	"strings"
)

// view is what a query reads: the raw body or the normalized attributes.
type view int

const (
	viewRaw view = iota
	viewNormalized
)

// query is a validated request of GET /events/raw or /events/normalized.
type query struct {
	view   view
	tenant string
	// dataset (raw) or eventType (normalized); "" = any.
	dataset, eventType string
	// since (inclusive) and until (exclusive), ns; zero = unbounded.
	since, until       int64
	hasSince, hasUntil bool
	limit              int
	after              *position // the cursor: rows after this one
}

// position is a row's place in the (event_time, seq) order.
type position struct{ time, seq int64 }

// The cursor is opaque to clients: a version byte and the last row's position, base64url.
const cursorVersion = 1

func (p position) cursor() string {
	var b [17]byte
	b[0] = cursorVersion
	binary.BigEndian.PutUint64(b[1:], uint64(p.time))
	binary.BigEndian.PutUint64(b[9:], uint64(p.seq))
	return base64.RawURLEncoding.EncodeToString(b[:])
}

var errBadCursor = errors.New("not a cursor returned by this API")

func parseCursor(s string) (position, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) != 17 || b[0] != cursorVersion {
		return position{}, errBadCursor
	}
	return position{time: int64(binary.BigEndian.Uint64(b[1:])), seq: int64(binary.BigEndian.Uint64(b[9:]))}, nil
}

// result is one row of an answer.
type result struct {
	pos                                 position
	dataset, recordID, version, evtType string
	doc                                 string // raw body or normalized attributes, JSON
}

// sql builds the statement of q: one index range scan in (event_time, seq) order, limit+1 rows so
// that the answer knows whether there is a next page.
func (q *query) sql(prefix string) (string, []any) {
	col, filter := "raw", ""
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	var where []string
	where = append(where, "tenant = "+arg(q.tenant))
	switch q.view {
	case viewRaw:
		if q.dataset != "" {
			where = append(where, "dataset = "+arg(q.dataset))
		}
	case viewNormalized:
		col = "normalized"
		if q.eventType != "" {
			where = append(where, "event_type = "+arg(q.eventType))
		}
	}
	filter = col + " IS NOT NULL"
	if q.after != nil {
		where = append(where, "(event_time, seq) > ("+arg(q.after.time)+", "+arg(q.after.seq)+")")
	}
	if q.hasSince {
		where = append(where, "event_time >= "+arg(q.since))
	}
	if q.hasUntil {
		where = append(where, "event_time < "+arg(q.until))
	}
	where = append(where, filter)
	stmt := "SELECT event_time, seq, dataset, record_id, version, COALESCE(event_type, ''), " + col +
		" FROM " + prefix + "records WHERE " + strings.Join(where, " AND ") +
		" ORDER BY event_time, seq LIMIT " + arg(q.limit+1)
	return stmt, args
}

// run answers q: up to q.limit rows, and the position to continue from when there are more.
func (s *store) run(ctx context.Context, q *query) ([]result, *position, error) {
	text, args := q.sql(s.prefix)
	stmt, err := s.prepared(ctx, text)
	if err != nil {
		return nil, nil, err
	}
	rs, err := stmt.QueryContext(ctx, args...)
	if err != nil {
		return nil, nil, err
	}
	defer rs.Close()
	out := make([]result, 0, min(q.limit, 128))
	more := false
	for rs.Next() {
		if len(out) == q.limit {
			more = true
			break
		}
		var r result
		if err := rs.Scan(&r.pos.time, &r.pos.seq, &r.dataset, &r.recordID, &r.version, &r.evtType, &r.doc); err != nil {
			return nil, nil, err
		}
		out = append(out, r)
	}
	if err := rs.Err(); err != nil {
		return nil, nil, err
	}
	if more {
		return out, &out[len(out)-1].pos, nil
	}
	return out, nil, nil
}

// prepared is the reader pool's statement for text, prepared once: a query takes one of a few dozen
// shapes (filters present or not), and SQLite parsing one anew cost ≈ 0.15 ms of a query's ≈ 1 ms.
func (s *store) prepared(ctx context.Context, text string) (*sql.Stmt, error) {
	if st, ok := s.stmts.Load(text); ok {
		return st.(*sql.Stmt), nil
	}
	st, err := s.r.PrepareContext(ctx, text)
	if err != nil {
		return nil, err
	}
	if prev, loaded := s.stmts.LoadOrStore(text, st); loaded {
		_ = st.Close()
		return prev.(*sql.Stmt), nil
	}
	return st, nil
}
