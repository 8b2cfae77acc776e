"""Pieces every harness server and test tool needs once: one module per job.

- ``http_body``: the HTTP/1.1 request-body reader (Content-Length or chunked).
- ``ports``: a free loopback TCP port.
- ``gobuild``: ``go build`` of a stdlib-only test program into a static linux binary.
- ``moto``: moto in server mode as a subprocess on loopback (Secrets Manager, SSM, S3, DynamoDB).
"""
