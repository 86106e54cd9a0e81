"""segmentation_node: camera image -> /lix/semantic (mono8 class ids at the input size, header copied).

Subscribes  image (sensor_msgs/Image: rgb8, bgr8, mono8, rgba8, bgra8) or image/compressed
Publishes   lix/semantic (mono8), lix/semantic_color (rgb8, only while subscribed),
            lix/confidence (mono8 0-255, only while subscribed), lix/class_table (std_msgs/String JSON,
            latched), lix/processing_time (std_msgs/Float32, ms), /diagnostics
"""

from __future__ import annotations

import sys

import numpy as np
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import String

from lix_ros.core.default_checkpoints import default_checkpoint, resolve_checkpoint
from lix_ros.core.image_codec import decode_color, decode_compressed
from lix_ros.core.inference import Segmenter
from lix_ros.data.classes import palette
from lix_ros.nodes.common import LATCHED_QOS, OUTPUT_QOS, class_table_msg, input_qos, mono8_msg, rgb8_msg
from lix_ros.nodes.inference_node import InferenceNode
from lix_ros.nodes.params import SEGMENTATION


class SegmentationNode(InferenceNode):
    def __init__(self, **kwargs):
        super().__init__("segmentation_node", SEGMENTATION, "lix/semantic", "lix/processing_time", **kwargs)

    def load(self) -> None:
        self.checkpoint_path = str(resolve_checkpoint(self.p["checkpoint"] or default_checkpoint("student")))
        self.segmenter = Segmenter(self.checkpoint_path, self.p["device"],
                                   (self.p["input_height"], self.p["input_width"]), self.p["resize_policy"],
                                   backend=self.p["backend"], providers=self.p["providers"], threads=self.p["threads"])
        self.palette = palette()

    def make_publishers(self) -> list:
        self.color_pub = self.create_lifecycle_publisher(Image, "lix/semantic_color", OUTPUT_QOS)
        self.confidence_pub = self.create_lifecycle_publisher(Image, "lix/confidence", OUTPUT_QOS)
        self.class_table_pub = self.create_lifecycle_publisher(String, "lix/class_table", LATCHED_QOS)
        return [self.color_pub, self.confidence_pub, self.class_table_pub]

    def subscribe(self) -> list:
        qos = input_qos(self.p["reliability"], self.p["queue_depth"])
        if self.p["use_compressed"]:  # callbacks only store: the worker does the work
            return [self.create_subscription(CompressedImage, "image/compressed", self.slot.put, qos)]
        return [self.create_subscription(Image, "image", self.slot.put, qos)]

    def on_activated(self) -> None:
        self.class_table_pub.publish(class_table_msg(self.segmenter.class_names, self.segmenter.output_classes))
        self.get_logger().info(f"segmenting {'image/compressed' if self.p['use_compressed'] else 'image'} with "
                               f"{self.checkpoint_path} on {self.p['device']} at {self.segmenter.input_size} "
                               f"({self.p['resize_policy']})")

    def infer(self, msg):
        if isinstance(msg, CompressedImage):
            rgb = decode_compressed(msg.format, msg.data)
        else:
            rgb = decode_color(msg.encoding, msg.height, msg.width, msg.step, msg.data, msg.is_bigendian)
        want_confidence = self.confidence_pub.get_subscription_count() > 0
        return msg.header, self.segmenter.predict(rgb, with_confidence=want_confidence), rgb

    def publish_extras(self, header, prediction, rgb) -> None:
        if self.color_pub.get_subscription_count() > 0:
            alpha = self.p["overlay_alpha"]
            colors = self.palette[prediction.ids].astype(np.float32)
            blended = alpha * colors + (1 - alpha) * rgb.astype(np.float32)
            self.color_pub.publish(rgb8_msg(header, blended.astype(np.uint8)))
        if prediction.confidence is not None:
            self.confidence_pub.publish(mono8_msg(header, prediction.confidence))

    def diagnostics_values(self) -> dict:
        return {"frames_received": self.slot.received}


def main(args: list[str] | None = None) -> int:
    from lix_ros.nodes.runner import run_nodes

    return run_nodes([SegmentationNode], args)


if __name__ == "__main__":
    sys.exit(main())
