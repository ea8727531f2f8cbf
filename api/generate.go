// Package api holds the gRPC and protobuf definitions of Blindfold's wire
// protocol. The generated code is committed; run `go generate ./api` after
// editing a .proto file (needs protoc, protoc-gen-go and protoc-gen-go-grpc).
package api

//go:generate protoc -I . --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative untrusted/untrusted.proto securedexchange/securedexchange.proto prooffiles/proof_files.proto evidence/evidence.proto models/models.proto
