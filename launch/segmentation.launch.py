"""ros2 launch lix_ros segmentation.launch.py [image:=/camera/image_raw] [use_teacher:=true] [use_ab:=true] ...

Starts segmentation_node (and optionally teacher_node and compare_node) with config/segmentation.yaml.
The arguments are the same as `lix-bringup`'s options (lix_ros/cli/bringup.py: LAUNCH_ARGUMENTS).
The nodes are lifecycle nodes (launch_ros LifecycleNode): with their `autostart` parameter (default true) they
configure and activate themselves; with autostart false a lifecycle manager drives them.
"""

import os

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction, SetEnvironmentVariable
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import LifecycleNode

from lix_ros.cli.bringup import LAUNCH_ARGUMENTS, camera_namespace, launch_settings
from lix_ros.core.dds import profile_path


def _nodes(context):
    value = {name: LaunchConfiguration(name).perform(context) for name, _, _ in LAUNCH_ARGUMENTS}
    settings = launch_settings(value)  # a missing params file or use_teacher:=maybe stops the launch here
    params_file = settings["params_file"]
    overrides = {"use_sim_time": settings["use_sim_time"]}
    if value["device"]:
        overrides["device"] = value["device"]
    remappings = [("image", value["image"]), ("image/compressed", value["image"] + "/compressed"),
                  ("depth", value["depth"]), ("points", value["points"]), ("camera_info", value["camera_info"])]
    student_overrides = dict(overrides, **({"checkpoint": value["checkpoint"]} if value["checkpoint"] else {}))
    if settings["cameras"]:  # one student per camera: <namespace>/<camera>, reading /<camera>/image_raw
        nodes = [LifecycleNode(package="lix_ros", executable="segmentation_node", name="segmentation_node",
                               namespace=camera_namespace(value["namespace"], camera),
                               parameters=[params_file, student_overrides],
                               remappings=[("image", f"/{camera}/image_raw"),
                                           ("image/compressed", f"/{camera}/image_raw/compressed")], output="screen")
                 for camera in settings["cameras"]]
    else:
        nodes = [LifecycleNode(package="lix_ros", executable="segmentation_node", name="segmentation_node",
                               namespace=value["namespace"], parameters=[params_file, student_overrides],
                               remappings=remappings, output="screen")]
    if settings["use_teacher"]:
        nodes.append(LifecycleNode(package="lix_ros", executable="teacher_node", name="teacher_node",
                                   namespace=value["namespace"], parameters=[params_file, overrides],
                                   remappings=remappings, output="screen"))
    if settings["use_ab"]:
        nodes.append(LifecycleNode(package="lix_ros", executable="compare_node", name="compare_node",
                                   namespace=value["namespace"], parameters=[params_file, overrides],
                                   remappings=remappings, output="screen"))
    return nodes


def generate_launch_description():
    actions = [DeclareLaunchArgument(name, default_value=default, description=description)
               for name, default, description in LAUNCH_ARGUMENTS]
    if not os.environ.get("FASTDDS_DEFAULT_PROFILES_FILE"):
        actions.append(SetEnvironmentVariable("FASTDDS_DEFAULT_PROFILES_FILE", str(profile_path())))
    actions.append(OpaqueFunction(function=_nodes))
    return LaunchDescription(actions)
