"""Run one or more nodes in this process (console entry points and lix-bringup)."""

from __future__ import annotations

import re
import signal
import sys

from lix_ros.core.dds import configure_dds_env


def run_nodes(factories: list, args: list[str] | None = None) -> int:
    argv = sys.argv[1:] if args is None else args
    if "-h" in argv or "--help" in argv:
        try:
            print(usage(factories))
        except BrokenPipeError:  # piped into `head`
            sys.stderr.close()
        return 0
    configure_dds_env()
    import rclpy
    from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor

    from lix_ros.core.checkpoint import CheckpointError

    rclpy.init(args=args)
    nodes = []
    try:
        for factory in factories:
            nodes.append(factory())
        from lix_ros.core.inference import set_torch_threads

        set_torch_threads([n.p["threads"] for n in nodes if "threads" in getattr(n, "p", {})])
        for node in nodes:  # autostart: configure -> activate now, as an unmanaged node would start
            if node.p["autostart"]:
                error = node.autostart()
                if error is not None:
                    raise CheckpointError(error)
        # One executor thread: the callbacks only store frames (each node's worker thread runs the model), and
        # a thread pool's hand-offs cost more than they save (bench_nodes.py, 10 Hz quick run: end to end /
        # in-node at 640x480 1.32-1.35 single-threaded vs 1.42-1.61 with MultiThreadedExecutor, two
        # cameras 18-19 vs 23-26 ms median).
        executor = SingleThreadedExecutor()
        for node in nodes:
            executor.add_node(node)
        executor.spin()
    except (CheckpointError, ValueError, FileNotFoundError) as error:  # configuration errors at start-up
        print(f"lix_ros: startup error: {error}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except Exception:
        if rclpy.ok():
            raise
        # SIGINT shut the context down while the executor was between waits (rclpy then raises RCLError
        # "context is not valid" instead of ExternalShutdownException): a normal shutdown.
    finally:
        # `ros2 launch` sends SIGINT twice (and users press Ctrl-C twice): once tearing down, finish it
        # (close the hard-frame bag, stop the workers) instead of dying half-way with a traceback.
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)
        for node in nodes:
            node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
    return 0


def usage(factories: list) -> str:
    """--help: the nodes' parameters, with defaults and what they accept, and how to set them."""
    from lix_ros.nodes.params import NODES

    lines = ["usage: <node> [--ros-args -p NAME:=VALUE ... | --params-file FILE]", ""]
    for factory in factories:
        name = re.sub(r"(?<!^)(?=[A-Z])", "_", factory.__name__).lower()  # SegmentationNode -> segmentation_node
        lines.append(f"{name} parameters:")
        for p in NODES[name]:
            lines.append(f"  {p.name} (default {p.default!r}; {p.allowed()}): {p.description}")
        lines.append("")
    lines.append("Example: segmentation_node --ros-args -p threads:=1 -r image:=/camera/image_raw")
    return "\n".join(lines)

