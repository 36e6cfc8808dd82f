"""Frames per second of hands.render vs pyrender (OpenGL, EGL or OSMesa) on the same scenes, same process.

    python bench/render.py [--repeats 30] [--threads N] [--device auto]

For one and two posed hands at 256² and 512²: the hard rasterizer's mask + depth, and the AttentionHand mesh
image. pyrender is timed twice: with the mesh uploaded once (`static`, its best case) and with a new mesh
every frame (`new mesh`, what fitting or video needs; our renderer always takes new vertices). Ratios are
ours fps / pyrender fps. `batch 8` renders 8 frames in one call and reports fps per frame. On a GPU pass
`--device cuda` to time the CUDA path (pyrender stays on its own OpenGL device).
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np
import torch
from timing import median_seconds

from hands.mano import build_mano
from hands.mano.poses import named_hand_pose
from hands.render import Meshes, PerspectiveCamera, Renderer
from hands.render.pyrender_reference import PyrenderScene, pyrender_error
from hands.utils.device import resolve_device


def hand_scene(num_hands: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """One or two posed hands about 0.45 m in front of the camera -> camera-frame vertices (V,3), faces (F,3)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        right, left = build_mano("right", pose_convention="flat"), build_mano("left", pose_convention="flat")
    right_verts = right(torch.tensor([[2.6, 0.3, 0.2]]), torch.tensor(named_hand_pose("point"), dtype=torch.float32)[None],
              transl=torch.tensor([[0.03, 0.0, 0.45]])).vertices[0]
    if num_hands == 1:
        return right_verts.to(device), right.faces.to(device)
    left_verts = left(torch.tensor([[2.6, -0.3, -0.2]]), torch.tensor(named_hand_pose("relaxed"), dtype=torch.float32)[None],
             transl=torch.tensor([[-0.04, 0.01, 0.47]])).vertices[0]
    return torch.cat([right_verts, left_verts]).to(device), torch.cat([right.faces, left.faces + len(right_verts)]).to(device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    problem = pyrender_error()
    print(f"torch {torch.__version__} on {device}, {args.threads} threads, median of {args.repeats} frames")
    if problem:
        print(f"pyrender not timed: {problem}")
    header = f"{'scene':18s} {'output':11s} {'ours fps':>9s} {'batch 8':>8s} {'pyrender static':>16s} {'new mesh':>9s} {'ratio':>14s}"
    print(header)
    for size in (256, 512):
        K = np.array([[1.4 * size, 0, size / 2], [0, 1.4 * size, size / 2], [0, 0, 1]])
        camera = PerspectiveCamera(torch.tensor(K, dtype=torch.float32, device=device))
        camera8 = PerspectiveCamera(camera.K.expand(8, 3, 3))
        renderer = Renderer(size)
        scene = None if problem else PyrenderScene((size, size))
        for num_hands in (1, 2):
            verts, faces = hand_scene(num_hands, device)
            meshes, meshes8 = Meshes(verts[None], faces), Meshes(verts[None].expand(8, -1, -1), faces)
            jitter = [verts + 0.001 * i for i in range(4)]
            for output, names in (("mask+depth", ["mask", "depth"]), ("mesh image", ["mesh_image"])):
                with torch.no_grad():
                    ours = median_seconds(lambda: (renderer.render(meshes, camera, names), sync()), args.repeats)
                    ours8 = median_seconds(lambda: (renderer.render(meshes8, camera8, names), sync()), max(args.repeats // 4, 3)) / 8
                line = f"{num_hands} hand{'s' if num_hands > 1 else ' '} {size}x{size:<7d} {output:11s} {1 / ours:9.1f} {1 / ours8:8.1f}"
                if scene is not None:
                    mesh_list = [(verts.cpu().numpy(), faces.cpu().numpy())]
                    scene.set_scene(mesh_list, K)
                    static = median_seconds(scene.draw, args.repeats)
                    counter = iter(range(10**9))
                    fresh = median_seconds(lambda: scene.render([(jitter[next(counter) % 4].cpu().numpy(), mesh_list[0][1])], K),
                                           args.repeats)
                    line += f" {1 / static:16.1f} {1 / fresh:9.1f} {static / ours:6.2f}x/{fresh / ours:5.2f}x"
                print(line)
        if scene is not None:
            scene.close()
    print("ratio = ours fps / pyrender fps (static / new mesh); pyrender always renders colour and depth together")


if __name__ == "__main__":
    main()
