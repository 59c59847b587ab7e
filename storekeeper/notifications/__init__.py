"""Notifications: transactional e-mail rendered from templates and sent through a mailer."""
