"""The ROS-free core: checkpoints, inference, metrics, image and point-cloud codecs, geometry, the frame slot
and stamp pairing the nodes use, node counters, shared constants and where the package's files are."""
