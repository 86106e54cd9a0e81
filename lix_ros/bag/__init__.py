"""Rosbag tools: synthetic recordings, replay, recording, offline evaluation and hard-frame capture.

Bags are real ROS 2 bags written and read with `rosbags` (mcap by default, sqlite3 too), which
`ros2 bag info/play` on a ROS 2 install can open.
"""
