"""Rigging the built-in hand: skinning weights, joint regressor, shape directions, pose PCA basis and mean pose."""

from __future__ import annotations

import numpy as np

from hands.geometry.mesh import vertex_neighbours
from hands.mano.builtin.skeleton import FINGER_CHAINS, FINGER_NAMES, PALM_NORMAL, REST_JOINTS, TIP_POSITIONS, bone_segments
from hands.mano.joints import MANO_PARENTS

NUM_JOINTS = 16
CHILDREN = {j: [c for c, p in enumerate(MANO_PARENTS) if p == j] for j in range(NUM_JOINTS)}


def segment_distance(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance from points p (N,3) to the segment a-b."""
    ab = b - a
    t = np.clip(((p - a) @ ab) / (ab @ ab), 0.0, 1.0)
    return np.linalg.norm(p - (a + t[:, None] * ab), axis=1)


def bone_distances(vertices: np.ndarray) -> np.ndarray:
    """(V,16) distance of each vertex to the rest-pose body part each joint moves."""
    segments = bone_segments()
    return np.stack([np.min([segment_distance(vertices, a, b) for a, b in segments[j]], axis=0) for j in range(NUM_JOINTS)], 1)


def skinning_weights(vertices: np.ndarray, faces: np.ndarray, power: float = 8.0, smoothing: int = 6) -> np.ndarray:
    """(V,16) smooth skinning weights.

    Each vertex is influenced only by the bone it is nearest to and that bone's parent and children, with inverse
    distance weights (power 8 gives a blend zone about one finger radius wide around each joint, enough to avoid
    collapse at 90 degrees of flexion); a few rounds of mesh Laplacian smoothing remove the seams where the nearest
    bone changes. Weights under 1e-3 are dropped and the rest renormalised.
    """
    dist = bone_distances(vertices).clip(1e-4)
    nearest = dist.argmin(axis=1)
    allowed = np.zeros_like(dist, dtype=bool)
    for j in range(NUM_JOINTS):
        rows = nearest == j
        for k in [j, MANO_PARENTS[j], *CHILDREN[j]]:
            if k >= 0:
                allowed[rows, k] = True
    weights = np.where(allowed, dist ** -power, 0.0)
    weights /= weights.sum(axis=1, keepdims=True)
    neighbours = vertex_neighbours(faces, len(vertices))
    for _ in range(smoothing):
        weights = 0.5 * weights + 0.5 * np.stack([weights[n].mean(axis=0) for n in neighbours])
    weights[weights < 1e-3] = 0.0
    return weights / weights.sum(axis=1, keepdims=True)


def joint_regressor(vertices: np.ndarray, joints: np.ndarray = REST_JOINTS, count: int = 24) -> np.ndarray:
    """(16,V) regressor whose rows are affine combinations of nearby vertices reproducing `joints` exactly.

    Start from Gaussian weights on the `count` nearest vertices and apply the smallest change that satisfies
    sum(w) = 1 and w @ vertices = joint; so shape changes move each joint with the surface around it.
    """
    regressor = np.zeros((len(joints), len(vertices)))
    for j, joint in enumerate(joints):
        dist = np.linalg.norm(vertices - joint, axis=1)
        ids = np.argsort(dist)[:count]
        sigma = dist[ids].mean()
        w0 = np.exp(-0.5 * (dist[ids] / sigma) ** 2)
        w0 /= w0.sum()
        constraints = np.vstack([np.ones(count), vertices[ids].T])  # (4, count)
        target = np.concatenate([[1.0], joint])
        correction = constraints.T @ np.linalg.solve(constraints @ constraints.T, target - constraints @ w0)
        regressor[j, ids] = w0 + correction
    return regressor


def finger_bone(joint: int) -> tuple[np.ndarray, np.ndarray]:
    """Start point and unit direction of the bone moved by `joint` (a finger joint)."""
    for finger_id, name in enumerate(FINGER_NAMES):
        chain = FINGER_CHAINS[name]
        if joint in chain:
            k = chain.index(joint)
            end = REST_JOINTS[chain[k + 1]] if k < 2 else TIP_POSITIONS[finger_id]
            start = REST_JOINTS[joint]
            return start, (end - start) / np.linalg.norm(end - start)
    raise ValueError(f"joint {joint} is not a finger joint")


def _finger_of(joint: int) -> str | None:
    return next((name for name in FINGER_NAMES if joint in FINGER_CHAINS[name]), None)


SHAPE_NAMES = (
    "overall size", "palm width", "finger length", "hand thickness", "finger girth",
    "thumb length", "palm length", "wrist width", "index vs ring length", "fingertip taper",
)


def shape_directions(vertices: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """(V,3,10) shape directions, one per SHAPE_NAMES entry; beta = 1 changes the named measure by roughly 5-10 %.

    Each direction is defined per body part (a displacement field for each joint's bone) and blended with the
    skinning weights, so parts stay attached where they meet.
    """
    V = len(vertices)
    wrist, middle_mcp = REST_JOINTS[0], REST_JOINTS[4]
    toward_wrist = (wrist - middle_mcp) / np.linalg.norm(wrist - middle_mcp)
    z_mid = middle_mcp[2]

    def per_joint(field) -> np.ndarray:
        out = np.zeros((V, 3))
        for j in range(NUM_JOINTS):
            out += weights[:, j:j + 1] * field(j, vertices)
        return out

    def finger_root(j: int) -> int:
        name = _finger_of(j)
        return FINGER_CHAINS[name][0] if name else 0

    def palm_width(j, v):
        point = v if j == 0 else np.broadcast_to(REST_JOINTS[finger_root(j)], v.shape)
        return np.stack([0 * v[:, 0], 0 * v[:, 0], 0.10 * (point[:, 2] - z_mid)], 1)

    def along_finger(scale: float, fingers: tuple[str, ...]):
        def field(j, v):
            name = _finger_of(j)
            if name not in fingers:
                return np.zeros_like(v)
            root = REST_JOINTS[FINGER_CHAINS[name][0]]
            _, axis = finger_bone(FINGER_CHAINS[name][0])
            return scale * ((v - root) @ axis)[:, None] * axis
        return field

    def radial(scale: float, joints_filter):
        def field(j, v):
            if not joints_filter(j):
                return np.zeros_like(v)
            start, axis = finger_bone(j)
            rel = v - start
            return scale * (rel - (rel @ axis)[:, None] * axis)
        return field

    def thickness(j, v):
        out = np.zeros_like(v)
        out[:, 1] = 0.10 * (v[:, 1] - REST_JOINTS[j][1])
        return out

    def palm_length(j, v):
        # Fingers stay; the wrist side of the palm moves away from the knuckles.
        along = (v - middle_mcp) @ toward_wrist if j == 0 else np.zeros(len(v))
        return 0.08 * np.clip(along, 0, None)[:, None] * toward_wrist

    def wrist_width(j, v):
        out = np.zeros_like(v)
        if j == 0:
            closeness = np.clip((v[:, 0] - 0.04) / (wrist[0] - 0.04), 0, None)
            out[:, 2] = 0.12 * (v[:, 2] - wrist[2]) * closeness
        return out

    def index_vs_ring(j, v):
        return along_finger(0.06, ("index",))(j, v) - along_finger(0.06, ("ring",))(j, v)

    def tip_taper(j, v):
        if j not in (3, 6, 9, 12, 15):
            return np.zeros_like(v)
        start, axis = finger_bone(j)
        rel = v - start
        along = np.clip(rel @ axis / 0.025, 0, 1)
        return -0.15 * along[:, None] * (rel - (rel @ axis)[:, None] * axis)

    four = ("index", "middle", "ring", "pinky")
    fields = [
        lambda j, v: 0.07 * (v - wrist),
        palm_width,
        along_finger(0.08, four),
        thickness,
        radial(0.10, lambda j: j != 0),
        along_finger(0.08, ("thumb",)),
        palm_length,
        wrist_width,
        index_vs_ring,
        tip_taper,
    ]
    return np.stack([per_joint(f) for f in fields], axis=-1)


def flexion_axis(joint: int, curl_toward: np.ndarray = PALM_NORMAL) -> np.ndarray:
    """Unit axis about which a positive rotation of `joint` curls its bone toward the palm."""
    _, bone = finger_bone(joint)
    axis = np.cross(bone, curl_toward)
    return axis / np.linalg.norm(axis)


def pose_from_joint_angles(angles: dict[int, float], axis_fn=flexion_axis) -> np.ndarray:
    """A (45,) hand pose rotating each given finger joint by its angle (radians) about `axis_fn(joint)`."""
    pose = np.zeros((15, 3))
    for joint, angle in angles.items():
        pose[joint - 1] = angle * axis_fn(joint)
    return pose.reshape(45)


def relaxed_mean_pose() -> np.ndarray:
    """The built-in `hands_mean` (45,): a relaxed, slightly curled hand."""
    angles: dict[int, float] = {}
    for name in ("index", "middle", "ring", "pinky"):
        mcp, pip, dip = FINGER_CHAINS[name]
        extra = {"index": 0.0, "middle": 0.05, "ring": 0.1, "pinky": 0.15}[name]
        angles.update({mcp: 0.20 + extra, pip: 0.30 + extra, dip: 0.15})
    t1, t2, t3 = FINGER_CHAINS["thumb"]
    angles.update({t1: 0.10, t2: 0.15, t3: 0.15})
    return pose_from_joint_angles(angles)


def pose_pca_basis() -> np.ndarray:
    """(45,45) orthonormal basis whose first rows are hand synergies (grasp, hook, spread, thumb, single fingers)."""
    four = ("index", "middle", "ring", "pinky")

    def flex(fingers, levels=(1.0, 1.0, 1.0)):
        angles = {}
        for name in fingers:
            for joint, level in zip(FINGER_CHAINS[name], levels):
                angles[joint] = level
        return pose_from_joint_angles(angles)

    spread = np.zeros(45)
    for name, sign in zip(four, (1.0, 0.3, -0.3, -1.0)):
        mcp = FINGER_CHAINS[name][0]
        spread[(mcp - 1) * 3:(mcp - 1) * 3 + 3] = sign * -PALM_NORMAL  # spreading is a rotation about the palm normal
    synergies = [
        flex(four + ("thumb",), (1.0, 1.0, 0.7)),  # power grasp
        flex(four, (1.0, -0.5, -0.5)),  # hook vs flat (MCP against IP joints)
        spread,
        flex(("thumb",)),
        flex(("index",)) - 0.3 * flex(("middle", "ring", "pinky")),  # pointing
        flex(("ring", "pinky")),
        flex(("middle",)),
    ]
    # Gram-Schmidt over the synergies, then the unit vectors, skipping every candidate already in the span: a
    # QR of the stacked candidates would leave those columns to rounding, which differs between CPU kernels.
    basis: list[np.ndarray] = []
    for candidate in [*synergies, *np.eye(45)]:
        residual = candidate.astype(np.float64)
        for _ in range(2):  # twice, for orthogonality to machine precision
            for b in basis:
                residual = residual - (residual @ b) * b
        if np.linalg.norm(residual) > 1e-6 * np.linalg.norm(candidate):
            basis.append(residual / np.linalg.norm(residual))  # positive projection on its candidate
        if len(basis) == 45:
            break
    return np.stack(basis)
