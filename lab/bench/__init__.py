"""Benchmarks: commands that print measured figures, apart from the product.

  latency        `pose-lab bench`: latency per configuration, training throughput (loop vs
                 model-only), and `--retrain`: the Retrain page's presets
  interactions   `pose-lab bench --interactions`: the explore pages' interactions
  classroom      `pose-lab classroom`: N learners against one app (the command); its parts:
    learners     one learner's walk in Chromium, the pace of a phase, a photo per learner
    server       the app under test as a subprocess, and its CPU read from /proc
    capacity     percentiles, tables, server CPU per step, learners per core
  pageweight     `pose-lab classroom --page-weight`: what each page costs a learner's browser
  browser        the one Chromium helper (Debian's Chromium, a free port, the health check)
"""
