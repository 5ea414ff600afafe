package sqlstorageextension

import (
	"errors"

	"github.com/otelcol-o365/otelcol-o365/internal/leasing"
	"github.com/otelcol-o365/otelcol-o365/internal/sqldb"
)

var (
	errClientClosed = errors.New("sql_storage: the storage client is closed")
	errNotStarted   = errors.New("sql_storage: the extension is not started (or already shut down)")
)

// Error classes, for the `error.type` attribute of otelcol_sql_storage_operation_errors.
const (
	errorTypeUnavailable = "unavailable"
	errorTypeLeaseLost   = "lease_lost"
	errorTypeClosed      = "closed"
	errorTypeOther       = "other"
)

func errorType(err error) string {
	switch {
	case errors.Is(err, leasing.ErrLeaseLost):
		return errorTypeLeaseLost
	case errors.Is(err, errClientClosed), errors.Is(err, errNotStarted):
		return errorTypeClosed
	case isUnavailable(err):
		return errorTypeUnavailable
	default:
		return errorTypeOther
	}
}

var (
	isUnavailable = sqldb.IsUnavailable
	isNotWritable = sqldb.IsNotWritable
	newRedactor   = sqldb.NewRedactor
)
