package discovery

import "github.com/reqplane/reqplane/internal/codec"

// appendJSONString appends s as serde_json writes a string (the codec's writer: only '"', '\\'
// and control characters are escaped, invalid UTF-8 becomes U+FFFD).
func appendJSONString(b []byte, s string) []byte { return codec.AppendString(b, s) }
