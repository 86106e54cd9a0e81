"""ROS 2 nodes: thin wrappers around the ROS-free core (inference, codecs, pairing, metrics)."""
