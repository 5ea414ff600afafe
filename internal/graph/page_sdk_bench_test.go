package graph

import (
	"context"
	"time"

	"encoding/json"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	absauth "github.com/microsoft/kiota-abstractions-go/authentication"
	khttp "github.com/microsoft/kiota-http-go"
	jsonser "github.com/microsoft/kiota-serialization-json-go"
	msgraphsdk "github.com/microsoftgraph/msgraph-sdk-go"
	msgraphcore "github.com/microsoftgraph/msgraph-sdk-go-core"
	"github.com/microsoftgraph/msgraph-sdk-go/models"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/plog"
)

// The msgraph-sdk-go path a user would write instead of ours: typed models from the SDK's parse nodes,
// then each model serialized back to JSON and into a map for the verbatim log body.

// sdkModelToBody turns one typed sign-in back into a log body, as a user of the SDK would have to.
func sdkModelToBody(w *jsonser.JsonSerializationWriter, s models.SignInable, lrs plog.LogRecordSlice) error {
	w.Reset()
	if err := w.WriteObjectValue("", s); err != nil {
		return err
	}
	raw, err := w.GetSerializedContent()
	if err != nil {
		return err
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return err
	}
	return lrs.AppendEmpty().Body().SetEmptyMap().FromRaw(m)
}

// sdkParse decodes a page with the SDK's models (no HTTP), then builds the log bodies.
func sdkParse(body []byte) (plog.Logs, error) {
	node, err := jsonser.NewJsonParseNode(body)
	if err != nil {
		return plog.Logs{}, err
	}
	v, err := node.GetObjectValue(models.CreateSignInCollectionResponseFromDiscriminatorValue)
	if err != nil {
		return plog.Logs{}, err
	}
	logs := plog.NewLogs()
	lrs := logs.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
	w := jsonser.NewJsonSerializationWriter()
	for _, s := range v.(models.SignInCollectionResponseable).GetValue() {
		if err := sdkModelToBody(w, s, lrs); err != nil {
			return plog.Logs{}, err
		}
	}
	return logs, nil
}

func TestSDKPathDecodesTheSamplePage(t *testing.T) {
	logs, err := sdkParse(samplePage(t))
	require.NoError(t, err)
	require.Equal(t, 1000, logs.LogRecordCount())
}

// staticToken hands the SDK a fixed bearer token for the loopback server.
type staticToken struct {
	hosts *absauth.AllowedHostsValidator
}

func (staticToken) GetAuthorizationToken(context.Context, *url.URL, map[string]any) (string, error) {
	return "bench-token", nil
}
func (s staticToken) GetAllowedHostsValidator() *absauth.AllowedHostsValidator { return s.hosts }

// BenchmarkIngestOverHTTP compares whole requests over loopback TLS: our client + decoder, and the
// SDK's typed request + PageIterator + model-to-map, on the same page.
func BenchmarkIngestOverHTTP(b *testing.B) {
	body := samplePage(b)
	var page map[string]any
	require.NoError(b, json.Unmarshal(body, &page))
	delete(page, "@odata.nextLink")
	single, err := json.Marshal(page)
	require.NoError(b, err)
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(single)
	}))
	defer srv.Close()

	b.Run("decoder=ours", func(b *testing.B) {
		c, err := NewClient(ClientSettings{HTTPClient: srv.Client(), Endpoint: srv.URL, Credential: staticCredential, Budget: NewBudget(0)})
		require.NoError(b, err)
		b.SetBytes(int64(len(single)))
		b.ReportAllocs()
		for b.Loop() {
			err := c.Get(context.Background(), Request{URL: srv.URL + "/v1.0/auditLogs/signIns"}, func(p []byte) error {
				_, err := decodeToLogs(FastDecoder{}, p)
				return err
			})
			if err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)*1000/b.Elapsed().Seconds(), "records/s")
	})
	b.Run("decoder=msgraph_sdk", func(b *testing.B) {
		hosts, err := absauth.NewAllowedHostsValidatorErrorCheck([]string{"127.0.0.1"})
		require.NoError(b, err)
		opts := msgraphsdk.GetDefaultClientOptions()
		httpClient := &http.Client{Transport: khttp.NewCustomTransportWithParentTransport(srv.Client().Transport,
			msgraphcore.GetDefaultMiddlewaresWithOptions(&opts)...)}
		adapter, err := msgraphsdk.NewGraphRequestAdapterWithParseNodeFactoryAndSerializationWriterFactoryAndHttpClient(
			absauth.NewBaseBearerTokenAuthenticationProvider(staticToken{hosts}), nil, nil, httpClient)
		require.NoError(b, err)
		client := msgraphsdk.NewGraphServiceClient(adapter)
		adapter.SetBaseUrl(srv.URL + "/v1.0")
		b.SetBytes(int64(len(single)))
		b.ReportAllocs()
		for b.Loop() {
			resp, err := client.AuditLogs().SignIns().Get(context.Background(), nil)
			if err != nil {
				b.Fatal(err)
			}
			it, err := msgraphcore.NewPageIterator[models.SignInable](resp, adapter, models.CreateSignInCollectionResponseFromDiscriminatorValue)
			if err != nil {
				b.Fatal(err)
			}
			logs := plog.NewLogs()
			lrs := logs.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
			w := jsonser.NewJsonSerializationWriter()
			var itemErr error
			err = it.Iterate(context.Background(), func(s models.SignInable) bool {
				itemErr = sdkModelToBody(w, s, lrs)
				return itemErr == nil
			})
			if err != nil || itemErr != nil || lrs.Len() != 1000 {
				b.Fatal(err, itemErr, lrs.Len())
			}
		}
		b.ReportMetric(float64(b.N)*1000/b.Elapsed().Seconds(), "records/s")
	})
}

// staticCredential is a token credential for benchmarks against a loopback server.
func staticCredential() (azcore.TokenCredential, error) { return fixedToken{}, nil }

type fixedToken struct{}

func (fixedToken) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return azcore.AccessToken{Token: "bench-token", ExpiresOn: time.Now().Add(time.Hour)}, nil
}
