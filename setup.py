"""ament_python package: builds with `colcon build` on a ROS 2 install and with `pip install -e .`."""

from glob import glob

from setuptools import find_packages, setup

PACKAGE = "lix_ros"

setup(
    name=PACKAGE,
    version="0.1.0",
    # The training harness lives in the training/ folder and installs under a scoped name (no top-level
    # `training` module to collide with other projects).
    packages=find_packages(include=["lix_ros", "lix_ros.*"])
    + ["lix_training"] + [f"lix_training.{p}" for p in find_packages(where="training")],
    package_dir={"lix_training": "training"},
    package_data={"lix_ros": ["checkpoints/*.pt"]},
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.launch.py")),
        (f"share/{PACKAGE}/config", glob("config/*.yaml") + glob("config/*.xml")),
        (f"share/{PACKAGE}/config/training", glob("config/training/*.yaml")),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="lix_ros maintainers",
    maintainer_email="maintainers@lix-ros.dev",
    description="LIX-distilled camera-only semantic segmentation for ROS 2",
    license="Apache-2.0",
    extras_require={"test": ["pytest"]},
    entry_points={
        "console_scripts": [
            "lix-data = lix_ros.cli.data:main",
            "lix-train = lix_training.cli:main",
            "lix-eval = lix_training.evaluate:main",
            "lix-export = lix_training.export:main",
            "lix-finetune = lix_training.finetune:main",
            "lix-bench-kd = lix_training.bench_kd:main",
            "lix-bringup = lix_ros.cli.bringup:main",
            "lix-bag = lix_ros.bag.cli:main",
            "lix-demo = lix_ros.cli.demo:main",
            "lix-ament-links = lix_ros.cli.ament_links:main",
            "segmentation_node = lix_ros.nodes.segmentation_node:main",
            "teacher_node = lix_ros.nodes.teacher_node:main",
            "compare_node = lix_ros.nodes.compare_node:main",
        ],
    },
)
