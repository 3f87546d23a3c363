"""Where the tempo comes from: the config, tapped footswitch, incoming MIDI clock or the player's onsets."""
