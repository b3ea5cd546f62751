"""mqtt: subscribe to topics on a broker; each message's topic and JSON payload become observations.

`client.py` is the protocol (aiomqtt, nothing of cityops), `schema.py` the settings, `connector.py` the kind.
"""
