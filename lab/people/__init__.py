"""Find the people in a photo, before the pose model frames one of them.

The pose models (like the paper's) see one person, centred, in a square crop
whose side is (1 + 0.3) x the extent of that person's joints. An everyday photo
has several people, or one small and far away, so the lab first *detects*
people and then maps each detection to that square framing:

    people = find_people(rgb)                 # [Person], most prominent first (boxes to draw)
    person = most_prominent(people)           # the default pick (or let the learner choose)
    person = refine(rgb, person)              # pose landmarks on that person: a tight framing
    box = square_box(person)                  # (cx, cy, side), as lab.data.transforms.person_box
    box = square_from_box((x0, y0, x1, y1))   # ... or from a box the learner drew
    crop = crop_person(rgb, person, 128)      # (128, 128, 3) uint8, resampled from the ORIGINAL pixels
    for msg in person_warnings(person, rgb.shape): ...   # "too small", "cut by the photo's edge"

The detector is MediaPipe's BlazePose *person detector* (`pose_detection.tflite`,
Apache-2.0), the first stage of MediaPipe Pose, and `refine` runs its second
stage, the pose landmark model, on the chosen person; both run on the LiteRT
interpreter (`ai-edge-litert`). Their weights (two `.tflite` files, unchanged from the
`mediapipe==0.10.21` wheel, Apache-2.0) ship inside pose-lab itself, in
`lab/assets/mediapipe/` with their licence: installed or in a checkout, nothing is
downloaded, at setup or at run time. For each person the
detector predicts the mid-hip and mid-shoulder points and a whole-body circle
around the hips (a loose framing); the landmarks give the joints (a tight one).
scripts/compare_person_detectors.py measured it against
OpenCV's HOG and Haar people detectors, MediaPipe Pose and the lab's own pose
model (today's framing, and as a multi-scale detector): docs/person_detectors.md.

Three modules: `framing` (Person, the square crop, warnings, the picker's boxes and labels),
`blazepose` (the detector and the landmark model) and `weights` (the `.tflite` files).
This package re-exports their public names, so `from lab import people as P; P.find_people`
reads as one API.
"""
from lab.people.blazepose import (  # noqa: F401
    INPUT,
    SCORE_MIN,
    TILES,
    BlazePoseDetector,
    LandmarkModel,
    _tile_origins,
    find_people,
    refine,
    ssd_anchors,
)
from lab.people.framing import (  # noqa: F401
    MIN_DETECTABLE_SIDE,
    MIN_SIDE_PX,
    TRAIN_MARGIN,
    Person,
    box_warnings,
    crop_person,
    cut_by_edge,
    describe,
    distinct,
    label_points,
    most_prominent,
    no_people_message,
    outline,
    person_warnings,
    square_box,
    square_from_box,
    too_small,
)
from lab.people.weights import MODELS, WEIGHTS_ENV, WEIGHTS_WHEEL, fetch_weights, model_path, weights_dir  # noqa: F401
