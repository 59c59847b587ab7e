"""The gRPC inventory service (``storekeeper grpc``): the same rules as the HTTP stock API.

``proto/storekeeper/inventory/v1/inventory.proto`` is the contract; ``gen/`` holds the code
generated from it (``make proto``). ``service`` implements it on top of the inventory context's
service module, ``interceptors`` turns domain errors into status codes, ``server`` runs it and
``client`` is a small typed client. See docs/grpc.md.
"""
