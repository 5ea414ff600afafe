package sqldb

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"io"
	"net"
	"net/url"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// IsUnavailable reports errors that say the database could not be reached or answered in time — worth
// retrying — as opposed to errors that will not go away by themselves (bad credentials, a missing
// database, a schema from a newer collector).
func IsUnavailable(err error) bool {
	if err == nil {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		// 08: connection exception; 57P01-57P03: admin shutdown, crash shutdown, cannot connect now
		// (starting up, recovery); 53300: too many connections; 40001/40P01: serialization failure,
		// deadlock detected.
		return strings.HasPrefix(pgErr.Code, "08") || strings.HasPrefix(pgErr.Code, "57P") ||
			pgErr.Code == "53300" || pgErr.Code == "40001" || pgErr.Code == "40P01"
	}
	var sqliteErr *sqlite.Error
	if errors.As(err, &sqliteErr) {
		switch sqliteErr.Code() & 0xff {
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
			return true
		}
		return false
	}
	var netErr net.Error
	var connectErr *pgconn.ConnectError
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, driver.ErrBadConn) ||
		errors.Is(err, sql.ErrConnDone) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.As(err, &netErr) || errors.As(err, &connectErr) || pgconn.Timeout(err) || pgconn.SafeToRetry(err)
}

// IsNotWritable reports SQLite errors that say the database file cannot be written — a read-only file,
// a full disk, missing permission, an I/O error — as opposed to a busy or locked database.
func IsNotWritable(err error) bool {
	var sqliteErr *sqlite.Error
	if !errors.As(err, &sqliteErr) {
		return false
	}
	switch sqliteErr.Code() & 0xff {
	case sqlite3.SQLITE_IOERR, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_FULL, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_PERM:
		return true
	}
	return false
}

// Redactor removes a password from error messages. pgx already redacts the connection strings it
// echoes; this is the belt to those braces, for every error that leaves a component.
type Redactor struct{ secrets []string }

// NewRedactor redacts password in every spelling a URL may give it.
func NewRedactor(password string) Redactor {
	if password == "" {
		return Redactor{}
	}
	set := map[string]struct{}{password: {}, url.QueryEscape(password): {}, url.PathEscape(password): {}, url.UserPassword("", password).String()[1:]: {}}
	r := Redactor{}
	for s := range set {
		if s != "" {
			r.secrets = append(r.secrets, s)
		}
	}
	return r
}

// redactedError keeps the error's identity (errors.Is / errors.As still see the original chain)
// only when the message had nothing to hide.
type redactedError struct{ msg string }

func (e *redactedError) Error() string { return e.msg }

// Error returns err, or an error with its message redacted if it contained the password.
func (r Redactor) Error(err error) error {
	if err == nil || len(r.secrets) == 0 {
		return err
	}
	msg := err.Error()
	clean := r.String(msg)
	if clean == msg {
		return err
	}
	return &redactedError{msg: clean}
}

// String redacts s.
func (r Redactor) String(s string) string {
	for _, secret := range r.secrets {
		s = strings.ReplaceAll(s, secret, "xxxxx")
	}
	return s
}
