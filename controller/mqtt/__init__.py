"""The broker side: the MQTT gateway (one connection, publish and subscribe), the embedded amqtt
broker and its login/ACL plugins, the broker's password and ACL files, and ingestion of node
reports in batches.

May import: controller.core, controller.auth, protocol.
"""
