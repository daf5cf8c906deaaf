#!/bin/bash
# Stand-in for the Paperspace Gradient image's /run.sh (test resource): like the
# real one it *sources* /storage/pre-run.sh, in its own shell, before it starts
# Jupyter. Nothing here exits early, so a pre-run.sh that breaks the shell shows
# up as a Jupyter that never started.
cd /notebooks || true
if [ -f /storage/pre-run.sh ]; then
    . /storage/pre-run.sh
fi
exec /usr/local/bin/jupyter-standin
