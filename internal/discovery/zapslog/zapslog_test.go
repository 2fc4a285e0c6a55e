package zapslog

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"go.uber.org/zap"
)

func TestNewForwardsAtOrAboveMin(t *testing.T) {
	tests := []struct {
		name    string
		min     slog.Level
		log     func(*zap.Logger)
		want    []string // substrings of the output
		wantOut bool
	}{
		{"info dropped at error", slog.LevelError, func(l *zap.Logger) { l.Info("hello") }, nil, false},
		{"warn dropped at error", slog.LevelError, func(l *zap.Logger) { l.Warn("hello") }, nil, false},
		{
			"error kept with fields and name", slog.LevelError,
			func(l *zap.Logger) {
				l.Named("etcd").With(zap.String("member", "m1")).Error("boom", zap.Int("n", 3), zap.Error(errors.New("bad")))
			},
			[]string{"level=ERROR", "msg=boom", "logger=etcd", "member=m1", "n=3", "error=bad"}, true,
		},
		{"info kept at info", slog.LevelInfo, func(l *zap.Logger) { l.Info("hi") }, []string{"level=INFO", "msg=hi"}, true},
		{"debug dropped by handler level", slog.LevelDebug, func(l *zap.Logger) { l.Debug("hi") }, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			l := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
			tt.log(New(l, tt.min))
			out := buf.String()
			if (out != "") != tt.wantOut {
				t.Fatalf("output %q, want output: %v", out, tt.wantOut)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("output %q lacks %q", out, w)
				}
			}
		})
	}
}

func TestNewNilLogger(t *testing.T) {
	New(nil, slog.LevelDebug).Error("dropped") // must not panic
}

func TestParseLevel(t *testing.T) {
	tests := []struct {
		in      string
		want    slog.Level
		wantErr bool
	}{
		{"debug", slog.LevelDebug, false},
		{"INFO", slog.LevelInfo, false},
		{"warn", slog.LevelWarn, false},
		{"error", slog.LevelError, false},
		{"panic", slog.LevelError, false},
		{"fatal", slog.LevelError, false},
		{"loud", 0, true},
	}
	for _, tt := range tests {
		got, err := ParseLevel(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseLevel(%q) = %v, %v", tt.in, got, err)
		}
	}
}
