"""Which way a person faces, from their 17 COCO keypoints: toward someone, turned away, or unknown.

The counter rule uses it for "a customer left alone with a piece": an associate who is within
reach but has turned their back (to the till, to fetch another tray, to a colleague) no longer
watches the piece in the customer's hands, the classic distraction theft. A single camera gives
only a 2-D picture, so the answer is deliberately conservative: ``None`` whenever the keypoints
do not settle it, and callers must never count ``None`` as turned away.

How. The shoulder line is the body's left-right axis; the chest faces along its normal. Which of
the two normals is the front follows from the pose model's left/right labels (a person's right
shoulder is on their right): with ``S = right_shoulder - left_shoulder`` in picture coordinates
(x right, y down, and down the picture is nearer an elevated camera) the front is
``(S_y, -S_x)``. A person facing the camera has their right shoulder on the picture's left, so
``S`` points left and the front points down, toward the camera; a person with their back to the
camera, the other way round. The angle between that front and the direction to the customer
(their chest) says whether the associate faces them.

Why the face is only a veto. The obvious cue, "both shoulders seen but no nose and no eyes: the
back is turned", does not work with MoveNet MultiPose, the default detector's pose: on the
pedestrians of vtest.avi walking away from the camera it still scores the nose and both eyes at
0.4-0.6 on the back of the head. Its left/right shoulder labels were right there, though (the
front pointed up the picture for every walker going up it). So the labels give the front, and
the face only vetoes the one contradiction a swapped pair would show: a front pointing toward
the camera with no nose and no eye seen at all is ``None``. A profile view (the shoulders
overlap, their line too short to give a direction), shoulders the model is unsure of, or a
customer standing on the associate's chest point are ``None`` as well.

Measured (the report of issue 5, scripts run on ../shared/data): on vtest.avi, people walking
toward or away from the camera (their front is where they walk): 40 of 40 sightings with a
known front faced a point ahead of them (< 120°) and were turned away from a point behind them;
people walking across the picture (near profile): 2 of 163 known sightings were judged turned
away from a point ahead. The seated cashier of the two POS clips, who faces the desk
throughout, has a known front in 30 of 129 sightings at ``min_score`` 0.2 (6 at 0.3: his right
shoulder is at the picture's edge), 8-66° from the customer side, never turned away; the
Fatehpur shopkeeper in 1 of 62 (the detector's NanoDet half finds him, without keypoints). No
clip we have shows an associate turning their back on a customer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from gemwatch.types import LEFT_EYE, LEFT_SHOULDER, NOSE, RIGHT_EYE, RIGHT_SHOULDER, Person

#: A shoulder is seen at this score or more. MultiPose scores are low (0.2-0.6 on the POS
#: clips' cashier); at 0.15 or 0.2 no sighting of his was turned away, at 0.3 few were known.
MIN_SCORE = 0.2
#: A face keypoint below this is not seen at all (between the two it says nothing).
FACE_ABSENT = 0.15
#: The shoulder line must span this share of the person's box height to give a direction:
#: about 0.2 when the chest faces the camera, near 0 in profile, where the normal is noise.
MIN_SPAN = 0.1
#: Turned away: the front points this far (degrees) from the direction to the customer. 90° is
#: side-on (still watching from the corner of the eye, or reaching for the till); 120° leaves
#: room for keypoint noise of a few pixels on a shoulder line of a few dozen.
AWAY_DEG = 120.0
#: The face vetoes a front within this angle of straight toward (or away from) the camera.
VETO_DEG = 60.0
#: A run of "turned away" survives this long with nothing known (a frame without keypoints);
#: longer, and the person may have turned back unseen, so the run ends.
UNKNOWN_GAP_S = 1.0
EPS = 1e-6
#: Keypoints are float32: an angle exactly at a threshold comes out a few 1e-5 degrees off.
ANGLE_EPS = 1e-3


def front_direction(
    keypoints: np.ndarray, box_height: float, *, min_score: float = MIN_SCORE
) -> np.ndarray | None:
    """Unit vector (x, y, picture coordinates) the chest faces, or None when the keypoints do
    not settle it (a shoulder unsure, a profile view, the face contradicting the labels)."""
    kp = np.asarray(keypoints, dtype=np.float64).reshape(-1, 3)
    if kp.shape[0] <= RIGHT_SHOULDER:
        return None
    left, right = kp[LEFT_SHOULDER], kp[RIGHT_SHOULDER]
    if left[2] < min_score or right[2] < min_score:
        return None
    s = right[:2] - left[:2]
    span = float(np.hypot(s[0], s[1]))
    if span < MIN_SPAN * max(box_height, 1.0):
        return None
    front = np.array([s[1], -s[0]]) / span
    face = kp[[NOSE, LEFT_EYE, RIGHT_EYE], 2]
    veto = math.cos(math.radians(VETO_DEG))
    if front[1] >= veto and np.all(face < FACE_ABSENT):
        return None  # "facing the camera" without a face: the labels are probably swapped
    return front


def chest_point(person: Person, *, min_score: float = MIN_SCORE) -> tuple[float, float]:
    """Where a person's chest is in the picture: between the shoulders when both are seen, else
    a third of the way down the box (people at a counter are compared at chest height)."""
    kp = person.keypoints
    if kp is not None and kp[LEFT_SHOULDER, 2] >= min_score and kp[RIGHT_SHOULDER, 2] >= min_score:
        mid = (kp[LEFT_SHOULDER, :2] + kp[RIGHT_SHOULDER, :2]) / 2.0
        return float(mid[0]), float(mid[1])
    x1, y1, x2, y2 = person.box
    return (x1 + x2) / 2.0, y1 + (y2 - y1) / 3.0


def facing_angle(
    person: Person, target: tuple[float, float], *, min_score: float = MIN_SCORE
) -> float | None:
    """Degrees (0-180) between where ``person`` faces and the direction to ``target`` (picture
    pixels), or None when unknown (no keypoints, unsure ones, the target on their chest)."""
    if person.keypoints is None:
        return None
    front = front_direction(person.keypoints, person.box[3] - person.box[1], min_score=min_score)
    if front is None:
        return None
    cx, cy = chest_point(person, min_score=min_score)
    to = np.array([target[0] - cx, target[1] - cy])
    dist = float(np.hypot(to[0], to[1]))
    if dist < MIN_SPAN * max(person.box[3] - person.box[1], 1.0):
        return None
    cos = float(np.clip(front @ to / dist, -1.0, 1.0))
    return math.degrees(math.acos(cos))


def turned_away(
    person: Person, target: tuple[float, float], *, away_deg: float = AWAY_DEG, min_score: float = MIN_SCORE
) -> bool | None:
    """True when ``person`` has turned away from ``target`` (at least ``away_deg``), False when
    they face it or stand side-on, None when the keypoints do not tell (never a guess)."""
    angle = facing_angle(person, target, min_score=min_score)
    if angle is None:
        return None
    return angle >= away_deg - ANGLE_EPS


@dataclass(slots=True)
class TurnWatch:
    """One person's current run of being seen turned away, in seconds from frame timestamps.

    Only sightings that say "turned away" lengthen the run; one that says "facing" ends it;
    unknown sightings neither, but two "turned away" sightings more than ``UNKNOWN_GAP_S`` apart
    are two runs (the person may have turned back unseen in between). So a run is always
    measured evidence, never filled in.
    """

    since: float | None = None
    last: float | None = None

    def update(self, ts: float, away: bool | None) -> None:
        if away is True:
            if self.since is None or self.last is None or ts - self.last > UNKNOWN_GAP_S + EPS:
                self.since = ts
            self.last = ts
        elif away is False or (self.last is not None and ts - self.last > UNKNOWN_GAP_S + EPS):
            self.since = self.last = None

    def away_for(self, ts: float) -> float:
        """Seconds seen turned away in the current run (0 when none or when it went stale)."""
        if self.since is None or self.last is None or ts - self.last > UNKNOWN_GAP_S + EPS:
            return 0.0
        return self.last - self.since
