"""BN repair: `bn reestimate` (new moving statistics from a corpus, in the program's own format), its eval-mode
child process, and `bn evaluate` (before vs after on ground truth, one verdict)."""
