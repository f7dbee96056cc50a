"""Creates a SQLite database in rollback (delete) journal mode: cg-make-db.py PATH."""
import sqlite3
import sys

conn = sqlite3.connect(sys.argv[1])
conn.execute('PRAGMA journal_mode=DELETE')
conn.execute('CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY, at REAL, source TEXT)')
conn.commit()
conn.close()
