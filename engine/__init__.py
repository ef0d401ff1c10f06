"""Revenue playbook engine: playbooks as code, after THE MODEL."""
