"""The steps of a job's life, one file each, as travis-ci/worker's `step_*.go`:

script.py      payload filter, then the build API   (transform_build_json, generate_script)
state.py       received, started, the final state   (send_received, update_state)
log.py         the log, closed with its last text   (open_log_writer)
instance.py    start, upload, delete                (start_instance, upload_script)
run_script.py  worker info, then the script         (write_worker_info, run_script)
"""
