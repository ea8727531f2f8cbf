// Package onnxpb holds Go types generated from a minimal subset of the ONNX
// protobuf schema (onnx.proto in this directory), enough to write models.
package onnxpb

//go:generate sh -c "PATH=$PATH:$(go env GOPATH)/bin protoc -I ../../.. --go_out=../../.. --go_opt=paths=source_relative ../../../internal/onnxgen/onnxpb/onnx.proto"
