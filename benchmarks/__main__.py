import sys

if sys.argv[1:2] == ["compare"]:
    from benchmarks.compare import main

    sys.exit(main(sys.argv[2:]))

from benchmarks.run import main

sys.exit(main())
