#!/usr/bin/env bash
# Regenerate storekeeper/grpc/gen/ from proto/ (`make proto`); the output is checked in.
#
# protoc names the generated module after the .proto path (storekeeper/inventory/v1/...), which
# would clash with the real storekeeper.inventory package; so the code is generated into a
# scratch directory, flattened into storekeeper/grpc/gen/, and its one cross-module import
# rewritten to point there. .pyi stubs come from mypy-protobuf (protoc-gen-mypy, -mypy_grpc).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
BIN=$(dirname "$PYTHON")
OUT=storekeeper/grpc/gen
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

"$PYTHON" -m grpc_tools.protoc -I proto \
  --plugin=protoc-gen-mypy="$BIN/protoc-gen-mypy" \
  --plugin=protoc-gen-mypy_grpc="$BIN/protoc-gen-mypy_grpc" \
  --python_out="$scratch" --grpc_python_out="$scratch" \
  --mypy_out="$scratch" --mypy_grpc_out="$scratch" \
  proto/storekeeper/inventory/v1/inventory.proto

rm -f "$OUT"/inventory_pb2*.py "$OUT"/inventory_pb2*.pyi
cp "$scratch"/storekeeper/inventory/v1/inventory_pb2* "$OUT"/
sed -i 's/^from storekeeper\.inventory\.v1 import inventory_pb2/from storekeeper.grpc.gen import inventory_pb2/; s/^import storekeeper\.inventory\.v1\.inventory_pb2$/import storekeeper.grpc.gen.inventory_pb2/; s/storekeeper\.inventory\.v1\.inventory_pb2\./storekeeper.grpc.gen.inventory_pb2./g' "$OUT"/inventory_pb2_grpc.py "$OUT"/inventory_pb2_grpc.pyi
echo "generated: $(ls "$OUT"/inventory_pb2*)"
