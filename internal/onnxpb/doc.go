// Package onnxpb holds Go types generated from a subset of the ONNX
// protobuf schema (onnx.proto in this directory): enough to write test
// models and to read every place a model can hold a tensor. Field numbers
// are the ONNX specification's. It is shared by the engine (production) and
// the test-model generator internal/onnxgen.
package onnxpb

//go:generate sh -c "PATH=$PATH:$(go env GOPATH)/bin protoc -I ../.. --go_out=../.. --go_opt=paths=source_relative ../../internal/onnxpb/onnx.proto"
