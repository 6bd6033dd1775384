"""People and keys: roles scoped to areas, password hashing and tokens, users, the hash-chained
audit record, node credentials, the signing keyring and its rotation.

May import: controller.core, protocol.
"""
