"""Benchmarks: commands that print measured figures, apart from the product.

  latency        `pose-lab bench`: latency per configuration, training throughput (loop vs
                 model-only), and `--retrain`: the Retrain page's presets
  interactions   `pose-lab bench --interactions`: the explore pages' interactions
"""
