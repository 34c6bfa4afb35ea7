"""`conv3n serve` with one of webhook_cpu.py's experiments patched in (to size it end to end).

.venv/bin/python bench/peers/serve_variant.py plan-cache serve --port 18680
"""

import sys

from webhook_cpu import apply_variant

from conv3n.cli import main

if __name__ == "__main__":
    apply_variant(sys.argv[1])
    sys.argv = ["conv3n", *sys.argv[2:]]
    main()
