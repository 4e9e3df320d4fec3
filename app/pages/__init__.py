"""The admin pages (Reflex): each module is one page or a group of pages and their state."""
